"""``runtime.quantization: auto``: the fastest weight format this device can hold.

Measured on an H100 (facts file), the LM step is 9.4 ms in int4 weight-only, 12.6 ms in
bf16 and 19.4 ms in int8 weight-only: int8 saves memory but is the slowest. So ``auto``
picks int4 where its kernel runs (CUDA compute capability >= 8.0, bf16 weights, every
Linear's width a multiple of the group size), else bf16 if the KV cache, Mimi and workspace
still fit beside the loaded weights, and int8 only when nothing else fits. On a CPU it
picks none (torchao's weight-only kernels are GPU kernels). The choice and the reason are
logged.
"""

from __future__ import annotations

from typing import Any

import torch

from entropi.config import Config
from entropi.core.logs import get_logger
from entropi.engine.vram import GB, estimate_vram_gb

log = get_logger(__name__)

INT4_GROUP = 128  # torchao Int4WeightOnlyConfig(group_size=128)
INT4_MIN_CAPABILITY = (8, 0)  # tile_packed_to_4d (tinygemm) needs Ampere or newer


def choose_quantization(cfg: Config, lm: Any, device: torch.device) -> tuple[str, str]:
    """(format, why) for the loaded, not yet quantised ``lm``."""
    wanted = cfg.runtime.quantization
    if wanted != "auto":
        return wanted, "set in runtime.quantization"
    if device.type != "cuda":
        return "none", "CPU: weight-only quantisation kernels are GPU kernels"
    capability = torch.cuda.get_device_capability(device)
    widths = {m.in_features for m in lm.modules() if isinstance(m, torch.nn.Linear)}
    if capability < INT4_MIN_CAPABILITY:
        why_not = f"compute capability {capability[0]}.{capability[1]} < 8.0"
    elif lm.dtype != torch.bfloat16:
        why_not = f"weights are {str(lm.dtype).removeprefix('torch.')}, int4 needs bf16"
    elif any(w % INT4_GROUP for w in widths):
        why_not = f"a Linear width is not a multiple of {INT4_GROUP}"
    else:
        return "int4", "fastest LM step (9.4 ms vs 12.6 bf16, 19.4 int8 on an H100)"
    free = torch.cuda.mem_get_info(device)[0] / GB
    est = estimate_vram_gb("none", cfg.runtime.context_window, cfg.runtime.max_conversations)
    need = est["total_gb"] - est["weights_gb"]  # weights are already on the device
    if free >= need:
        return "none", f"int4 not possible ({why_not}); bf16 fits ({free:.1f} GB free)"
    return "int8", (f"int4 not possible ({why_not}); only {free:.1f} GB free for "
                    f"{need:.1f} GB of cache and workspace: int8 halves the weights")


def resolve_and_log(cfg: Config, lm: Any, device: torch.device) -> str:
    quant, why = choose_quantization(cfg, lm, device)
    log.info("quantization", chosen=quant, configured=cfg.runtime.quantization, why=why)
    return quant
