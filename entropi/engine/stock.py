"""Plain moshi, run the way ``moshi.server`` runs it: the side-by-side reference for benchmarks.

Per frame: PCM to the device, ``mimi.encode``, ``LMGen.step``, ``mimi.decode``, ``.cpu()`` for
the PCM and ``.item()`` for the text token (two host syncs), no snapshot, no batched prefill,
Mimi graphed only the way moshi graphs it itself. Never imports ``moshi.server`` (it runs at
import); this mirrors its ``ServerState`` loop.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from entropi.core.constants import FRAME_SIZE
from entropi.engine.engine import Engine


@torch.inference_mode()
def stock_frame_ms(engine: Engine, pcm_frames: list[np.ndarray],
                   prime_steps: int = 0, prime_repeats: int = 0) -> tuple[list[float], list[float]]:
    """Time each frame through a fresh stock ``LMGen`` on the engine's own weights, and
    (``prime_repeats`` times) a restart the fork's way done with stock code: reset, then one
    ``LMGen.step`` per prefix frame (``prime_steps``: voice + silence + text + silence).
    Stock moshi cannot force the prefix tokens as the fork does; a step costs the same.

    The engine's streaming state is released first (the weights are shared), so the engine
    cannot be stepped afterwards. Returns (frame ms, restart ms).
    """
    from moshi.models.lm import LMGen
    from moshi.modules.streaming import StreamingModule

    # moshi has no public "stop streaming forever"; detached children (the depformer) keep
    # their own state, so every streaming module is cleared, not just the two roots.
    for root in (engine.lm_gen, engine.mimi):
        for module in root.modules():
            if isinstance(module, StreamingModule):
                module._streaming_state = None
    s = engine.cfg.sampling
    lm_gen = LMGen(engine.lm, use_sampling=s.use_sampling, temp=s.audio_temp,
                   temp_text=s.text_temp, top_k=s.audio_topk, top_k_text=s.text_topk)
    mimi, device = engine.mimi, engine.device
    mimi.streaming_forever(1)
    lm_gen.streaming_forever(1)

    def frame(pcm: np.ndarray) -> None:
        chunk = torch.from_numpy(pcm).to(device=device)[None, None]
        codes = mimi.encode(chunk)
        tokens = lm_gen.step(codes[:, :, 0:1])
        if tokens is not None:
            mimi.decode(tokens[:, 1:]).cpu()
            tokens[0, 0, 0].item()

    silence = np.zeros(FRAME_SIZE, dtype=np.float32)
    for _ in range(4):  # moshi.server's warmup()
        frame(silence)
    times = []
    for pcm in pcm_frames:
        t = time.perf_counter()
        frame(pcm)
        times.append((time.perf_counter() - t) * 1000)
    quiet = mimi.encode(torch.zeros(1, 1, FRAME_SIZE, device=device))[:, :, 0:1]
    restarts = []
    for _ in range(prime_repeats):
        t = time.perf_counter()
        lm_gen.reset_streaming()
        for _ in range(prime_steps):
            lm_gen.step(quiet)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        restarts.append((time.perf_counter() - t) * 1000)
    return times, restarts
