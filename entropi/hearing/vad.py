"""Is the user speaking in this frame? silero-vad (a small neural model, in a worker thread)
or the old energy rule (``window.vad: energy``).

Lag, explicitly: silero costs ≈ 0.65 ms a frame, too much for the frame loop (p99 < 1 ms), so
each frame goes to one worker thread and ``step`` returns the decision for the frame
``LAG_FRAMES`` (2 = 160 ms) earlier. In real time that decision finished ~159 ms ago and is
read without waiting; in a fast WAV run the loop may outrun the worker and then awaits it
(off the loop thread), which also keeps the decisions identical from run to run. The pause
detector and the user-turn segmenter both see the same lagged decision; the transcript
keeps a pre-roll of audio (entropi.conversation.transcript.PRE_ROLL_FRAMES) so a turn's
first word is not lost to the lag.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import deque
from typing import Protocol

import numpy as np

from entropi.audio.levels import rms_dbfs
from entropi.audio.resample import SPEECH_RATE, ChunkResampler
from entropi.config import WindowSection
from entropi.core.constants import SAMPLE_RATE

LAG_FRAMES = 2
CHUNK = 512  # silero's window at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous chunk silero sees before each one
# Hysteresis as in silero's own segmenter: speech starts at p ≥ threshold and ends only when
# p drops below threshold − 0.15, so a soft syllable does not split a turn.
HYSTERESIS = 0.15


class VoiceActivity(Protocol):
    def push(self, pcm: np.ndarray) -> None:
        """Hand over the newest 80 ms frame (never blocks)."""
        ...

    async def decision(self) -> bool:
        """Whether the user spoke in the frame pushed ``lag`` frames before the last one."""
        ...

    async def step(self, pcm: np.ndarray) -> bool:
        """``push`` then ``decision``."""
        ...

    lag: int
    # Seconds the last ``step`` waited for the worker (0 in real time; a fast WAV run's pacing).
    last_wait_s: float

    def close(self) -> None: ...


class EnergyVad:
    """The frame's RMS level against ``window.vad_threshold_dbfs``; no lag."""

    lag = 0
    last_wait_s = 0.0

    def __init__(self, threshold_dbfs: float) -> None:
        self.threshold_dbfs = threshold_dbfs
        self._last = False

    def is_speech(self, pcm: np.ndarray) -> bool:
        return rms_dbfs(pcm) > self.threshold_dbfs

    def push(self, pcm: np.ndarray) -> None:
        self._last = self.is_speech(pcm)

    async def decision(self) -> bool:
        return self._last

    async def step(self, pcm: np.ndarray) -> bool:
        return self.is_speech(pcm)

    def close(self) -> None:
        pass


class SileroFrames:
    """silero-vad on 80 ms frames at 24 kHz (blocking; one caller thread at a time)."""

    def __init__(self, threshold: float) -> None:
        from importlib.resources import files

        import onnxruntime

        # The ONNX model ships inside the silero-vad wheel. Called straight through
        # onnxruntime with numpy (no torch wrapper): the run releases the GIL, so this thread
        # barely competes with the frame loop for it. One intra-op thread: the model is tiny.
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = opts.intra_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(files("silero_vad.data") / "silero_vad.onnx"), sess_options=opts,
            providers=["CPUExecutionProvider"])
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)
        self._sr = np.array(16000, dtype=np.int64)
        self.threshold = threshold
        self._resample = ChunkResampler(SAMPLE_RATE, SPEECH_RATE)
        self._buf = np.zeros(0, np.float32)
        self._speaking = False
        self._p = 0.0

    def probability(self, pcm: np.ndarray) -> float:
        """The highest speech probability among the 32 ms chunks completed in this frame."""
        self._buf = np.concatenate([self._buf, self._resample.push(pcm)])
        n = len(self._buf) // CHUNK
        if n:
            chunks = self._buf[: n * CHUNK].reshape(n, CHUNK)
            self._buf = self._buf[n * CHUNK:]
            self._p = max(self._chunk(c) for c in chunks)
        return self._p

    def _chunk(self, chunk: np.ndarray) -> float:
        # silero's streaming contract: each 512-sample chunk is preceded by the previous
        # chunk's last 64 samples, and the recurrent state is carried over.
        x = np.concatenate([self._context, chunk])[None, :]
        out, self._state = self._session.run(
            None, {"input": x, "state": self._state, "sr": self._sr})
        self._context = chunk[-CONTEXT:]
        return float(out[0, 0])

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
        self.last_wait_s = 0.0
        self.waits = 0  # steps that had to wait (never in real time, 80 ms >> 0.65 ms)

    def push(self, pcm: np.ndarray) -> None:
        self._pending.append(self._pool.submit(self._frames.is_speech, pcm))

    async def step(self, pcm: np.ndarray) -> bool:
        self.push(pcm)
        return await self.decision()

    async def decision(self) -> bool:
        if len(self._pending) <= self.lag:
            return False  # the first frames of a run: no decision yet
        fut = self._pending.popleft()
        self.last_wait_s = 0.0
        if not fut.done():  # only when the loop outruns real time (fast WAV runs)
            t = time.perf_counter()
            await asyncio.wrap_future(fut)
            self.last_wait_s = time.perf_counter() - t
            self.waits += 1
        return fut.result()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def open_vad(cfg: WindowSection) -> VoiceActivity:
    if cfg.vad == "energy":
        return EnergyVad(cfg.vad_threshold_dbfs)
    return SileroVad(cfg.vad_speech_probability)
