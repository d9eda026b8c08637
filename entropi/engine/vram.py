"""GPU memory estimate for the PersonaPlex 7B (dep_q cut to 8), from measured H100 figures."""

from __future__ import annotations

GB = 1e9
# Weights measured with stock moshi 0.2.13 on an H100 (facts file), dep_q = 8.
WEIGHTS_GB = {"none": 14.3, "int8": 7.5, "int4": 4.3, "fp8": 7.5}
MIMI_GB = 0.47
# KV cache: 32 layers x (K, V) x context x 4096 x 2 bytes (bf16), whatever the weight format.
KV_BYTES_PER_POSITION = 32 * 2 * 4096 * 2
WORKSPACE_GB = 0.1  # CUDA graphs and allocator slack (measured peak - weights - KV is ~0.1)


def estimate_vram_gb(quantization: str, context_window: int,
                     conversations: int = 1) -> dict[str, float]:
    """``conversations`` > 1: a batched engine holds one KV cache per slot plus the
    single-stream engine's own one (where a slot primes)."""
    caches = conversations + 1 if conversations > 1 else 1
    kv = KV_BYTES_PER_POSITION * context_window * caches / GB
    weights = WEIGHTS_GB[quantization]
    total = weights + kv + MIMI_GB + WORKSPACE_GB
    return {"weights_gb": weights, "kv_cache_gb": round(kv, 2), "mimi_gb": MIMI_GB,
            "total_gb": round(total, 1)}
