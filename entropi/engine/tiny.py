"""A deterministic random-weight PersonaPlex look-alike for tests, the demo and CPU benchmarks.

The LM keeps PersonaPlex's real stream layout (n_q 16, dep_q 16, card 2048, the real delays)
and is written in the real checkpoint's key layout (stacked depformer ``in_proj_weight``), so
the loader's dep_q 16 → 8 cut runs on it exactly as on the 7B file. Everything else is small.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from entropi.core.logs import get_logger

log = get_logger(__name__)

TINY_VERSION = 3  # bump when the architecture below changes: invalidates cached files

DELAYS = [0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1]

TINY_LM_KWARGS: dict = {
    "dim": 128, "text_card": 512, "existing_text_padding_id": 3, "n_q": 16, "dep_q": 16,
    "card": 2048, "num_heads": 4, "num_layers": 2, "hidden_scale": 4.125, "causal": True,
    "layer_scale": None, "context": 3000, "max_period": 10000, "gating": "silu",
    "norm": "rms_norm_f32", "positional_embedding": "rope", "depformer_dim": 64,
    "depformer_dim_feedforward": 256, "depformer_num_heads": 4, "depformer_num_layers": 2,
    "depformer_layer_scale": None, "depformer_multi_linear": True, "depformer_context": 16,
    "depformer_max_period": 10000, "depformer_gating": "silu", "depformer_pos_emb": "none",
    "depformer_weights_per_step": True, "delays": DELAYS,
}

_SEANET = {
    "channels": 1, "dimension": 64, "causal": True, "n_filters": 8, "n_residual_layers": 1,
    "activation": "ELU", "compress": 2, "dilation_base": 2, "disable_norm_outer_blocks": 0,
    "kernel_size": 7, "residual_kernel_size": 3, "last_kernel_size": 3, "norm": "none",
    "pad_mode": "constant", "ratios": [8, 6, 5, 4], "true_skip": True,
}
TINY_MIMI_CONFIG: dict = {
    "sample_rate": 24000, "channels": 1, "frame_rate": 12.5, "seanet": _SEANET,
    "quantizer": {"dimension": 32, "n_q": 8, "bins": 2048, "input_dimension": 64,
                  "output_dimension": 64},
    "transformer": {"d_model": 64, "num_heads": 4, "num_layers": 1, "causal": True,
                    "layer_scale": 0.01, "context": 250, "conv_layout": True,
                    "max_period": 10000, "gating": "none", "norm": "layer_norm",
                    "positional_embedding": "rope", "dim_feedforward": 128,
                    "input_dimension": 64, "output_dimensions": [64]},
}


@dataclass(frozen=True)
class TinyPaths:
    moshi_weights: Path
    mimi_weights: Path
    tokenizer: Path
    lm_config: Path  # moshi-style LM kwargs (dep_q 16), read back by the loader
    mimi_config: Path


def stack_attention_projections(state: dict) -> dict:
    """moshi's per-step ``in_projs.{i}.weight`` → the checkpoint's stacked ``in_proj_weight``."""
    out: dict = {}
    stacked: dict[str, list] = {}
    for key, value in state.items():
        for part, target in ((".in_projs.", "in_proj_weight"), (".out_projs.", "out_proj.weight")):
            if part in key:
                head, tail = key.split(part)
                stacked.setdefault(f"{head}.{target}", []).append((int(tail.split(".")[0]), value))
                break
        else:
            out[key] = value
    import torch

    for key, items in stacked.items():
        out[key] = torch.cat([v for _, v in sorted(items, key=lambda x: x[0])], dim=0)
    return out


# A random LM emits a text token almost every frame, so its agent never falls silent and no
# window would end at a natural pause. These two constants make PAD (id 3) "sticky": the PAD
# input embedding and the PAD output row share one strong feature, so the model mostly
# listens and speaks in bursts, like a conversational model does.
PAD_STICKY_EMBED = 3.0
TEXT_STICKY_EMBED = 1.0
PAD_STICKY_LOGIT = 5.5


def make_pad_sticky(lm, embed: float = PAD_STICKY_EMBED, text_embed: float = TEXT_STICKY_EMBED,
                    logit: float = PAD_STICKY_LOGIT) -> None:
    """Give the random LM runs of PAD (agent silent) between runs of text (agent speaking)."""
    import torch

    pad = TINY_LM_KWARGS["existing_text_padding_id"]
    with torch.no_grad():
        lm.text_emb.weight[:, 0] = -text_embed
        lm.text_emb.weight[pad, 0] = embed
        lm.text_linear.weight[:, 0] = 0.0
        lm.text_linear.weight[pad, 0] = logit


def randomize_codebooks(mimi) -> None:
    """A fresh codebook is all zeros ("not initialised"), so every frame would encode to code
    0; random centroids make voice codes vary, so tests can tell frames apart."""
    for module in mimi.modules():
        if hasattr(module, "embedding_sum") and hasattr(module, "_initialized"):
            module.embedding_sum.normal_()
            module._initialized.fill_(1.0)


def ensure_tiny_checkpoint(cache_dir: Path, seed: int) -> TinyPaths:
    """Create (once) the tiny checkpoint for ``seed`` under ``cache_dir``; then return its paths."""
    root = Path(cache_dir).expanduser() / f"tiny-v{TINY_VERSION}-seed{seed}"
    paths = TinyPaths(root / "model.safetensors", root / "mimi.safetensors",
                      root / "tokenizer.model", root / "lm_config.json", root / "mimi_config.json")
    stamp = root / "READY"
    if stamp.is_file():
        return paths
    import torch
    from moshi.models.loaders import get_mimi, get_moshi_lm
    from safetensors.torch import save_file

    from entropi.text.tokenizer import train_tiny_tokenizer

    log.info("tiny_checkpoint_create", path=str(root), seed=seed)
    root.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    torch.manual_seed(seed)
    lm = get_moshi_lm(None, lm_kwargs=TINY_LM_KWARGS, device="cpu", dtype=torch.float32)
    make_pad_sticky(lm)
    # bf16 on disk like the real checkpoint; the loader casts to the runtime dtype.
    state = {k: v.detach().to(torch.bfloat16).contiguous()
             for k, v in stack_attention_projections(lm.state_dict()).items()}
    save_file(state, str(paths.moshi_weights))
    mimi = get_mimi(None, TINY_MIMI_CONFIG, device="cpu", num_codebooks=8)
    randomize_codebooks(mimi)
    save_file({k: v.detach().contiguous() for k, v in mimi.state_dict().items()},
              str(paths.mimi_weights))
    train_tiny_tokenizer(paths.tokenizer, vocab_size=TINY_LM_KWARGS["text_card"])
    paths.lm_config.write_text(json.dumps(TINY_LM_KWARGS, indent=1))
    paths.mimi_config.write_text(json.dumps(TINY_MIMI_CONFIG, indent=1))
    stamp.write_text(f"{TINY_VERSION}\n")
    return paths
