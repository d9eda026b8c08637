"""Is the user speaking in this frame? silero-vad (a small neural model, in a worker thread)
or the old energy rule (``window.vad: energy``).

Lag, explicitly: silero costs ≈ 0.65 ms a frame, too much for the frame loop (p99 < 1 ms), so
each frame goes to one worker thread and ``step`` returns the decision for the frame
``LAG_FRAMES`` (2 = 160 ms) earlier. In real time that decision finished ~159 ms ago and is
read without waiting; in a fast WAV run the loop may outrun the worker and then awaits it
(off the loop thread), which also keeps the decisions identical from run to run. The pause
detector and the user-turn segmenter both see the same lagged decision; the transcript
keeps a pre-roll of audio (entropi.transcript.PRE_ROLL_FRAMES) so a turn's first word is not
lost to the lag.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import deque
from typing import Protocol

import numpy as np

from entropi.audio.levels import rms_dbfs
from entropi.config import WindowSection
from entropi.hearing.resample import StreamResampler

LAG_FRAMES = 2
CHUNK = 512  # silero's window at 16 kHz (32 ms)
# Hysteresis as in silero's own segmenter: speech starts at p ≥ threshold and ends only when
# p drops below threshold − 0.15, so a soft syllable does not split a turn.
HYSTERESIS = 0.15


class VoiceActivity(Protocol):
    async def step(self, pcm: np.ndarray) -> bool:
        """Feed the newest 80 ms frame; returns whether the user spoke ``lag`` frames ago."""
        ...

    lag: int

    def close(self) -> None: ...


class EnergyVad:
    """The frame's RMS level against ``window.vad_threshold_dbfs``; no lag."""

    lag = 0

    def __init__(self, threshold_dbfs: float) -> None:
        self.threshold_dbfs = threshold_dbfs

    def is_speech(self, pcm: np.ndarray) -> bool:
        return rms_dbfs(pcm) > self.threshold_dbfs

    async def step(self, pcm: np.ndarray) -> bool:
        return self.is_speech(pcm)

    def close(self) -> None:
        pass


class SileroFrames:
    """silero-vad on 80 ms frames at 24 kHz (blocking; one caller thread at a time)."""

    def __init__(self, threshold: float) -> None:
        from importlib.resources import files

        from silero_vad.utils_vad import OnnxWrapper

        # The ONNX model ships inside the wheel (one intra-op thread: it is tiny).
        self.model = OnnxWrapper(str(files("silero_vad.data") / "silero_vad.onnx"),
                                 force_onnx_cpu=True)
        self.threshold = threshold
        self._resample = StreamResampler()
        self._buf = np.zeros(0, np.float32)
        self._speaking = False
        self._p = 0.0

    def probability(self, pcm: np.ndarray) -> float:
        """The highest speech probability among the 32 ms chunks completed in this frame."""
        import torch

        self._buf = np.concatenate([self._buf, self._resample(pcm)])
        n = len(self._buf) // CHUNK
        if n:
            chunks = self._buf[: n * CHUNK].reshape(n, CHUNK)
            self._buf = self._buf[n * CHUNK:]
            self._p = max(float(self.model(torch.from_numpy(c.copy()), 16000)) for c in chunks)
        return self._p

    def is_speech(self, pcm: np.ndarray) -> bool:
        p = self.probability(pcm)
        if self._speaking:
            self._speaking = p >= self.threshold - HYSTERESIS
        else:
            self._speaking = p >= self.threshold
        return self._speaking


class SileroVad:
    lag = LAG_FRAMES

    def __init__(self, threshold: float) -> None:
        self._frames = SileroFrames(threshold)
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="vad")
        self._pending: deque[concurrent.futures.Future[bool]] = deque()

    async def step(self, pcm: np.ndarray) -> bool:
        self._pending.append(self._pool.submit(self._frames.is_speech, pcm))
        if len(self._pending) <= self.lag:
            return False  # the first frames of a run: no decision yet
        fut = self._pending.popleft()
        if not fut.done():  # only when the loop outruns real time (fast WAV runs)
            await asyncio.wrap_future(fut)
        return fut.result()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def open_vad(cfg: WindowSection) -> VoiceActivity:
    if cfg.vad == "energy":
        return EnergyVad(cfg.vad_threshold_dbfs)
    return SileroVad(cfg.vad_speech_probability)
