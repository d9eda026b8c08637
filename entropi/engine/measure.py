"""Timing loops for ``entropi bench engine``: whole frames, LM steps alone, batched ticks."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from entropi.core.constants import FRAME_SECONDS
from entropi.core.percentiles import percentile


def time_steps(engine: Any, inputs: list[np.ndarray], frames: int, prompt: str,
               rng: np.random.Generator
               ) -> tuple[list[float], list[float], list[float]]:
    """(whole-frame ms, host CPU ms per frame, LM-step-alone ms); re-primes with ``prompt``
    between the two loops."""
    sync = torch.cuda.synchronize if engine.device.type == "cuda" else (lambda: None)
    frame_ms: list[float] = []
    cpu_ms: list[float] = []  # host CPU time per frame: launch overhead and host syncs
    for pcm in inputs:
        t, c = time.perf_counter(), time.thread_time()
        engine.step(pcm)  # ends with its device→host copy: already synchronised
        frame_ms.append((time.perf_counter() - t) * 1000)
        cpu_ms.append((time.thread_time() - c) * 1000)
    engine.prime(prompt)
    step_ms: list[float] = []
    for _ in range(frames):
        codes = torch.as_tensor(rng.integers(0, 2048, (1, 8, 1)), device=engine.device)
        t = time.perf_counter()
        engine.step_codes(codes)
        sync()
        step_ms.append((time.perf_counter() - t) * 1000)
    return frame_ms, cpu_ms, step_ms


def time_batches(engine: Any, prompt: str, inputs: list[np.ndarray],
                 largest: int) -> dict[str, Any]:
    """The batched engine at B = 1..``largest``: whole ticks (encode, LM, decode, one host
    copy) with every slot stepping; the same ticks right after slot 0 re-injects (how much
    its neighbours' step changes) and the re-injection itself (what their frame waits)."""
    from entropi.engine.batched import BatchedEngine

    sync = torch.cuda.synchronize if engine.device.type == "cuda" else (lambda: None)
    out: dict[str, Any] = {"frames": len(inputs)}
    realtime = 0
    for b in range(1, largest + 1):
        if engine.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(engine.device)
        batched = BatchedEngine(engine, b)
        try:
            batched.warm_up()
            for slot in range(b):
                batched.prime(slot, prompt)
            plain, after, reinject = [], [], []
            for k, pcm in enumerate(inputs):
                if k % 10 == 5 and b > 1:  # slot 0 re-injects between two ticks
                    t = time.perf_counter()
                    batched.prime(0, prompt)
                    sync()
                    reinject.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                batched.step({slot: pcm for slot in range(b)})
                (after if k % 10 == 5 and b > 1 else plain).append(
                    (time.perf_counter() - t) * 1000)
            mem = batched.memory_stats()
        finally:
            batched.close()
            del batched  # its batch-b state goes before the next, larger one is allocated
            if engine.device.type == "cuda":
                torch.cuda.empty_cache()
        p99 = percentile(plain, 99, 4)
        out |= {f"b{b}_tick_ms_p50": percentile(plain, 50, 4), f"b{b}_tick_ms_p99": p99,
                f"b{b}_ms_per_conversation_p50": percentile(plain, 50, 4) / b,
                f"b{b}_state_bytes": mem["state_bytes"], f"b{b}_peak_bytes": mem["peak_bytes"]}
        if after:
            out |= {f"b{b}_tick_after_reinject_ms_p50": percentile(after, 50, 4),
                    f"b{b}_reinject_change_pct": round(
                        100 * (percentile(after, 50, 4) / percentile(plain, 50, 4) - 1), 1),
                    f"b{b}_reinject_ms_p50": percentile(reinject, 50, 4)}
        if p99 is not None and p99 < FRAME_SECONDS * 1000:
            realtime = b
    out["largest_realtime_batch"] = realtime  # tick p99 under one 80 ms frame
    return out
