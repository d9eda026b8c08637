"""Find the three PersonaPlex files (hub, local or tiny) and load the LM state dict with the
dep_q 16 → 8 cut done in memory (the user's checkpoint file is never rewritten)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entropi.config import Config
from entropi.core.errors import ModelError
from entropi.core.logs import get_logger

log = get_logger(__name__)

KEPT_DEP_Q = 8  # the agent's own 8 codebooks; PersonaPlex's extra 8 predict the user's audio
SOURCE_DEP_Q = 16  # PersonaPlex's depformer steps, whose attention span the cut model keeps
# CheckpointInfo argument → (config key under ``model``, file name in the hub repo)
HUB_FILES = {
    "moshi_weights": ("moshi_weight", "model.safetensors"),
    "mimi_weights": ("mimi_weight", "tokenizer-e351c8d8-checkpoint125.safetensors"),
    "tokenizer": ("tokenizer", "tokenizer_spm_32k_3.model"),
}


@dataclass(frozen=True)
class Checkpoint:
    moshi_weights: Path
    mimi_weights: Path
    tokenizer: Path
    lm_kwargs: dict[str, Any]  # architecture to build: always dep_q 8
    mimi_config: dict[str, Any] | None  # None: moshi's real Mimi


def personaplex_lm_kwargs() -> dict[str, Any]:
    """Moshiko's architecture, which is PersonaPlex's once cut to dep_q 8 (facts file)."""
    from moshi.models.loaders import _lm_kwargs

    return dict(_lm_kwargs)


def resolve_checkpoint(cfg: Config) -> Checkpoint:
    """Local paths, the tiny generated model, or hub downloads (HF_TOKEN, HF_HUB_OFFLINE)."""
    from moshi.models.loaders import CheckpointInfo

    m = cfg.model
    config_path: Path | None = None
    mimi_config_path: Path | None = None
    if m.source == "tiny":
        from entropi.engine.tiny import ensure_tiny_checkpoint

        tiny = ensure_tiny_checkpoint(m.cache_dir, m.tiny_seed)
        files = {"moshi_weights": tiny.moshi_weights, "mimi_weights": tiny.mimi_weights,
                 "tokenizer": tiny.tokenizer}
        config_path, mimi_config_path = tiny.lm_config, tiny.mimi_config
    else:
        files = {}
        for arg, (key, hub_name) in HUB_FILES.items():
            local = getattr(m, key)
            if local is not None and not Path(local).is_file():
                raise ModelError(f"{local}: model.{key} file not found; fix the path in the "
                                 f"config or set it to null to download it from {m.hf_repo}")
            files[arg] = local if local is not None else download(cfg, hub_name)
        # Our own architecture file: stops moshi asking the hub for a config.json.
        config_path = _write_json(m.cache_dir / "personaplex_lm_config.json",
                                  personaplex_lm_kwargs())
    info = CheckpointInfo.from_hf_repo(
        m.hf_repo, moshi_weights=Path(files["moshi_weights"]),
        mimi_weights=Path(files["mimi_weights"]), tokenizer=Path(files["tokenizer"]),
        config_path=config_path, mimi_config_path=mimi_config_path)
    lm_kwargs = dict(info.lm_config or personaplex_lm_kwargs())
    return Checkpoint(info.moshi_weights, info.mimi_weights, info.tokenizer,
                      build_kwargs(lm_kwargs), info.mimi_config)


def build_kwargs(lm_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The dep_q 8 architecture for a (possibly dep_q 16) checkpoint's kwargs."""
    out = dict(lm_kwargs)
    out["dep_q"] = KEPT_DEP_Q
    return out


def keep_uncut_depformer_span(model: Any) -> Any:
    """Give each depformer layer the uncut model's attention span (16 positions).

    moshi 0.2.13 ignores ``depformer_context`` and sizes the depformer's KV cache by its
    step count: 8 after the cut, 16 in PersonaPlex. The masked extra slots change the
    attention's float sums (~6e-7), so the cut model was close but not bit-exact; with the
    same 16-slot cache (the mask never bites within one frame) it is identical.
    """
    for layer in model.depformer.layers:
        layer.self_attn.context = SOURCE_DEP_Q
    return model


def _write_json(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def download(cfg: Config, filename: str) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    repo = cfg.model.hf_repo
    token = cfg.model.hf_token.get_secret_value() if cfg.model.hf_token else None
    has_token = bool(token or os.environ.get("HF_TOKEN"))
    try:
        return Path(hf_hub_download(repo, filename, token=token))
    except GatedRepoError:
        fix = ("your token has no access: accept the licence on the repo's page" if has_token
               else "export HF_TOKEN=<a token that accepted the licence>")
        raise ModelError(f"{repo}/{filename}: the repository is gated; {fix}") from None
    except LocalEntryNotFoundError:
        raise ModelError(
            f"{repo}/{filename}: not in the local Hugging Face cache and downloads are off "
            f"(HF_HUB_OFFLINE or no network); download once online, or set model.source: local "
            f"with file paths") from None
    except RepositoryNotFoundError:
        fix = "" if has_token else " or gated (export HF_TOKEN)"
        raise ModelError(f"{repo}: repository not found{fix}; check model.hf_repo") from None
    except EntryNotFoundError:
        raise ModelError(f"{repo}/{filename}: no such file in the repository; set "
                         f"model.source: local and point the model.* paths at your files") from None
    except OSError as exc:
        raise ModelError(f"{repo}/{filename}: download failed ({exc}); check the network "
                         f"or use model.source: local") from None


# --------------------------------------------------------------------------- dep_q cut

_INDEXED = re.compile(
    r"^(?P<head>linears|depformer_in|depformer_emb|depformer\.layers\.\d+\.gating"
    r"|depformer\.layers\.\d+\.self_attn\.(?:in|out)_projs)\.(?P<i>\d+)\.")
_STACKED = re.compile(r"^depformer\.layers\.\d+\.self_attn\.(in_proj_weight|out_proj\.weight)$")


def checkpoint_dep_q(state: dict[str, Any]) -> int:
    return sum(1 for k in state if re.fullmatch(r"linears\.\d+\.weight", k))


def cut_dep_q(state: dict[str, Any], source_dep_q: int, keep: int = KEPT_DEP_Q) -> dict[str, Any]:
    """Drop the depformer weights of codebooks ``keep…`` (the user's stream predictions).

    Per-codebook modules are indexed lists; ``depformer_emb`` has one entry fewer (the last
    codebook is never an input); stacked attention projections are sliced by rows.
    """
    if source_dep_q == keep:
        return state
    out: dict[str, Any] = {}
    for key, value in state.items():
        m = _INDEXED.match(key)
        if m:
            limit = keep - 1 if m.group("head") == "depformer_emb" else keep
            if int(m.group("i")) >= limit:
                continue
        elif _STACKED.match(key):
            rows = value.shape[0]
            if rows % source_dep_q:
                raise ModelError(f"{key}: {rows} rows do not split into {source_dep_q} codebooks")
            value = value[: rows // source_dep_q * keep]
        out[key] = value
    return out


def load_lm_state(path: Path, lm_kwargs: dict[str, Any], dtype: Any, device: Any) -> Any:
    """Read the LM weights, cut to dep_q 8, cast, and load them strictly into a new LMModel."""
    import torch
    from moshi.models.lm import LMModel
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable safetensors checkpoint ({exc}); "
                         f"re-download it or fix model.moshi_weight") from None
    dep_q = checkpoint_dep_q(state)
    if dep_q not in (KEPT_DEP_Q, 16):
        raise ModelError(f"{path}: has {dep_q} depformer output heads; expected 16 "
                         f"(PersonaPlex) or 8 (Moshi) — is this a Moshi/PersonaPlex LM file?")
    state = cut_dep_q(state, dep_q)
    for key, value in state.items():
        if value.dtype.is_floating_point:
            state[key] = value.to(dtype)
    with torch.device("meta"):
        model = LMModel(dtype=dtype, **lm_kwargs)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise ModelError(_describe_load_error(path, str(exc))) from None
    model = model.to(device)
    model.eval()
    return keep_uncut_depformer_span(model)


def _describe_load_error(path: Path, text: str) -> str:
    missing = re.search(r"Missing key\(s\) in state_dict: (.*?)\.\s*(?:Unexpected|size|$)",
                        text, re.S)
    if "size mismatch" in text:
        first = text.split("size mismatch for ", 1)[1].split("\n")[0].strip()
        return (f"{path}: wrong shapes for the PersonaPlex architecture ({first}); "
                f"the file is not a PersonaPlex/Moshi 7B checkpoint")
    if missing:
        keys = [k.strip().strip('"') for k in missing.group(1).split(",")]
        shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
        return (f"{path}: missing keys {shown}; the checkpoint is incomplete or of another "
                f"model — re-download it")
    unexpected = text.split("Unexpected key(s) in state_dict:", 1)[-1].strip().split(",")[0]
    return f"{path}: unexpected key {unexpected.strip()}; not a PersonaPlex/Moshi checkpoint"
