"""Timing loops for ``entropi bench engine``: whole frames, and LM steps alone."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch


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
