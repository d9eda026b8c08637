"""Checkpoint loading: the dep_q 16 → 8 cut (strict, lossless for the agent) and bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from moshi.models.lm import LMGen
from moshi.models.loaders import get_moshi_lm
from safetensors.torch import load_file, save_file

from entropi.core.errors import ModelError
from entropi.engine.checkpoints import (
    Checkpoint,
    build_kwargs,
    checkpoint_dep_q,
    cut_dep_q,
    load_lm_state,
)
from entropi.engine.model import load_mimi, load_models
from entropi.engine.tiny import TINY_LM_KWARGS, TINY_MIMI_CONFIG, TinyPaths

CUT = build_kwargs(TINY_LM_KWARGS)


def _load(path: Path):
    return load_lm_state(path, CUT, torch.float32, "cpu")


def test_tiny_file_has_personaplex_layout(tiny: TinyPaths) -> None:
    state = load_file(str(tiny.moshi_weights))
    assert checkpoint_dep_q(state) == 16
    # Stacked per-codebook attention, as in the real checkpoint: the cut must slice it.
    assert state["depformer.layers.0.self_attn.in_proj_weight"].shape[0] == 16 * 3 * 64


def test_cut_loads_strictly_and_keeps_agent_weights(tiny: TinyPaths) -> None:
    lm = _load(tiny.moshi_weights)
    assert lm.dep_q == 8 and len(lm.linears) == 8 and len(lm.depformer_emb) == 7
    full = load_file(str(tiny.moshi_weights))
    stacked = full["depformer.layers.1.self_attn.in_proj_weight"].float()
    got = lm.depformer.layers[1].self_attn.in_projs[7].weight
    assert torch.equal(got, stacked.view(16, -1, 64)[7])
    assert torch.equal(lm.linears[7].weight, full["linears.7.weight"].float())


def test_dep_q8_file_loads_as_is(tiny: TinyPaths, tmp_path: Path) -> None:
    full = load_file(str(tiny.moshi_weights))
    cut = cut_dep_q(full, 16)
    assert checkpoint_dep_q(cut) == 8
    path = tmp_path / "moshiko-layout.safetensors"
    save_file(cut, str(path))
    a, b = _load(path), _load(tiny.moshi_weights)
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), name


def test_cut_model_tokens_equal_uncut_model(tiny: TinyPaths) -> None:
    """Greedy text + 8 agent codebooks over 60 frames: identical with and without the cut.

    The uncut model takes no user input (it predicts the user's 8 codebooks itself), so the
    same user codes are written into its delay cache where LMGen writes them for the cut one.
    """
    cut = _load(tiny.moshi_weights)
    uncut = get_moshi_lm(tiny.moshi_weights, lm_kwargs=TINY_LM_KWARGS, device="cpu",
                         dtype=torch.float32)
    logits: dict[int, list[torch.Tensor]] = {id(cut): [], id(uncut): []}
    for model in (cut, uncut):
        store = logits[id(model)]
        for head in list(model.linears)[:8]:  # the agent's codebooks only
            head.register_forward_hook(lambda _m, _i, out, store=store: store.append(out.clone()))
    rng = np.random.default_rng(3)
    users = torch.as_tensor(rng.integers(0, 2048, (60, 8)))
    gen_cut, gen_uncut = LMGen(cut, use_sampling=False), LMGen(uncut, use_sampling=False)
    delays = torch.tensor(TINY_LM_KWARGS["delays"][9:])
    outs_cut, outs_uncut = [], []
    with torch.inference_mode(), gen_cut.streaming(1), gen_uncut.streaming(1):
        state = gen_uncut._streaming_state
        ct = state.cache.shape[2]
        for o, user in enumerate(users):
            for k in torch.nonzero(delays == 0).flatten():
                state.cache[0, 9 + k, o % ct] = user[k]
            a = gen_cut.step(user.view(1, 8, 1))
            b = gen_uncut.step(torch.zeros(1, 0, 1, dtype=torch.long))
            for k in torch.nonzero(delays == 1).flatten():
                state.cache[0, 9 + k, (o + 1) % ct] = user[k]
            if a is not None:
                outs_cut.append(a[0, :, 0])
                outs_uncut.append(b[0, :9, 0])
    assert len(outs_cut) >= 50
    assert torch.equal(torch.stack(outs_cut), torch.stack(outs_uncut))
    # Bit-exact, not just the same argmax: every agent logit of the depformer is identical.
    assert len(logits[id(cut)]) == len(logits[id(uncut)]) == 60 * 8
    assert all(torch.equal(x, y) for x, y in zip(logits[id(cut)], logits[id(uncut)],
                                                  strict=True))
    # A degenerate model emitting one token everywhere would make this test vacuous.
    assert len(set(torch.stack(outs_cut)[:, 1].tolist())) > 1


# --------------------------------------------------------------------------- bad inputs


def test_missing_local_file_names_key(make_config, tmp_path: Path, tiny: TinyPaths) -> None:
    cfg = make_config()
    local = cfg.model.model_copy(update={
        "source": "local", "moshi_weight": tmp_path / "nope.safetensors",
        "mimi_weight": tiny.mimi_weights, "tokenizer": tiny.tokenizer})
    with pytest.raises(ModelError, match=r"nope\.safetensors: model\.moshi_weight file not found"):
        load_models(cfg.model_copy(update={"model": local}))


def test_not_a_safetensors_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ModelError, match="not a readable safetensors checkpoint"):
        _load(bad)


def test_wrong_shapes(tiny: TinyPaths, tmp_path: Path) -> None:
    state = load_file(str(tiny.moshi_weights))
    state["text_linear.weight"] = torch.zeros(99, 128, dtype=torch.bfloat16)
    path = tmp_path / "shapes.safetensors"
    save_file(state, str(path))
    with pytest.raises(ModelError, match=r"wrong shapes .*text_linear\.weight"):
        _load(path)


def test_missing_keys(tiny: TinyPaths, tmp_path: Path) -> None:
    state = load_file(str(tiny.moshi_weights))
    del state["transformer.layers.1.norm1.alpha"]
    path = tmp_path / "missing.safetensors"
    save_file(state, str(path))
    with pytest.raises(ModelError, match=r"missing keys transformer\.layers\.1\.norm1\.alpha"):
        _load(path)


def test_unknown_head_count(tiny: TinyPaths, tmp_path: Path) -> None:
    state = {k: v for k, v in load_file(str(tiny.moshi_weights)).items()
             if not k.startswith("linears.1")}  # drops linears.1 and linears.10-15
    path = tmp_path / "heads.safetensors"
    save_file(state, str(path))
    with pytest.raises(ModelError, match=r"has 9 depformer output heads; expected 16 "):
        _load(path)


def test_hub_offline_and_not_cached(make_config, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    cfg = make_config()
    hub = cfg.model_copy(update={"model": cfg.model.model_copy(update={
        "source": "hub", "cache_dir": tmp_path})})
    with pytest.raises(ModelError, match=r"nvidia/personaplex-7b-v1/model\.safetensors: not in "
                                         r"the local Hugging Face cache"):
        load_models(hub)


def test_mimi_file_of_another_model(tiny: TinyPaths) -> None:
    ckpt = Checkpoint(tiny.moshi_weights, tiny.moshi_weights, tiny.tokenizer, CUT,
                      TINY_MIMI_CONFIG)
    with pytest.raises(ModelError, match=r"model\.safetensors: not a matching Mimi checkpoint"):
        load_mimi(ckpt, torch.device("cpu"))
