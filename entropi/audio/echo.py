"""Echo cancellation for open speakers: WebRTC's audio processing (as shipped in ``livekit``)
removes the agent's own voice from the microphone, with what the speaker played as the
far-end reference.

It works on 10 ms blocks and costs ≈ 0.7 ms per block (≈ 6 ms per 80 ms frame on one CPU
thread): too much for PortAudio's callback or the frame loop, so an :class:`EchoWorker`
thread does it between the two. The callback hands over (mic, played) pairs; the worker
delivers the cleaned mic frame to the input queue ≈ 6 ms later.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import numpy as np

from entropi.core.errors import ConfigError
from entropi.core.logs import get_logger

log = get_logger(__name__)


class EchoCanceller:
    """Blocking: ``far`` (what the speaker played) then ``near`` (the mic, same length)."""

    def __init__(self, rate: int, delay_ms: int = 0) -> None:
        try:
            from livekit import rtc
        except ImportError:
            raise ConfigError("audio.echo_cancellation needs the livekit package "
                              "(pip install livekit) or audio.echo_cancellation: off") from None
        self._rtc = rtc
        self.rate = rate
        self.block = rate // 100
        self.apm = rtc.AudioProcessingModule(echo_cancellation=True, high_pass_filter=True)
        if delay_ms:
            self.apm.set_stream_delay_ms(delay_ms)

    def _blocks(self, pcm: np.ndarray) -> np.ndarray:
        n = len(pcm) // self.block
        pcm16 = np.clip(np.round(pcm[: n * self.block] * 32767), -32768, 32767)
        return pcm16.astype(np.int16).reshape(n, self.block)

    def far(self, pcm: np.ndarray) -> None:
        for b in self._blocks(pcm):
            self.apm.process_reverse_stream(self._rtc.AudioFrame(b.tobytes(), self.rate, 1,
                                                                 self.block))

    def near(self, pcm: np.ndarray) -> np.ndarray:
        out = np.array(pcm, dtype=np.float32, copy=True)
        for i, b in enumerate(self._blocks(pcm)):
            frame = self._rtc.AudioFrame(b.tobytes(), self.rate, 1, self.block)
            self.apm.process_stream(frame)
            cleaned = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32767
            out[i * self.block:(i + 1) * self.block] = cleaned
        return out

    def process(self, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
        self.far(played)
        return self.near(mic)


class EchoWorker:
    """One thread: (mic, played, stamp) in, ``deliver(cleaned_mic, stamp)`` out, in order."""

    def __init__(self, canceller: EchoCanceller,
                 deliver: Callable[[np.ndarray, float], None]) -> None:
        self.canceller = canceller
        self.deliver = deliver
        self._q: queue.SimpleQueue[tuple[np.ndarray, np.ndarray, float] | None] = \
            queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="echo", daemon=True)
        self._thread.start()
        self.failed = False

    def push(self, mic: np.ndarray, played: np.ndarray, stamp: float) -> None:
        """From PortAudio's callback: two copies and a queue put, nothing else."""
        self._q.put((mic, played, stamp))

    def _run(self) -> None:
        while (item := self._q.get()) is not None:
            mic, played, stamp = item
            if not self.failed:
                try:
                    mic = self.canceller.process(mic, played)
                except Exception as exc:  # the talk goes on with the raw microphone
                    self.failed = True
                    log.warning("echo_cancellation_failed", error=f"{type(exc).__name__}: {exc}")
            self.deliver(mic, stamp)

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=1.0)
