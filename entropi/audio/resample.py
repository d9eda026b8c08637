"""The one resampler: soxr (what the reference implementation uses), offline and streamed.

``resample`` converts a whole signal with no delay (soxr flushes its filter), so a WAV keeps
its length and alignment. ``StreamResampler`` feeds a device callback: soxr's stream hands
back uneven chunk sizes, so its output is buffered and each ``push`` returns exactly
``len(block) * dst / src`` samples behind a small fixed lead of silence.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from entropi.core.constants import SAMPLE_RATE

_LEAD_PROBE_BLOCKS = 64  # blocks simulated to size the lead (soxr's chunking is periodic)
SPEECH_RATE = 16_000  # what the speech models (silero-vad, whisper) take


def resample(pcm: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Resample a 1-D float signal; the output has about ``len * dst / src`` samples."""
    import soxr

    pcm = np.ascontiguousarray(pcm, dtype=np.float32)
    if src == dst or pcm.size == 0:
        return pcm.copy()
    return np.asarray(soxr.resample(pcm, src, dst), dtype=np.float32)


def to_speech_rate(pcm: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """One whole clip (a user turn) to the speech models' 16 kHz."""
    return resample(pcm, rate, SPEECH_RATE)


class ChunkResampler:
    """A long signal resampled chunk by chunk, sample-exact with :func:`resample` of the
    whole (soxr's stream and one-shot paths share one filter); output sizes vary per chunk."""

    def __init__(self, src: int, dst: int) -> None:
        self._stream = _stream(src, dst) if src != dst else None

    def push(self, pcm: np.ndarray, last: bool = False) -> np.ndarray:
        pcm = np.ascontiguousarray(pcm, dtype=np.float32).reshape(-1)
        if self._stream is None:
            return pcm.copy()
        return np.asarray(self._stream.resample_chunk(pcm, last=last), dtype=np.float32)

    def clear(self) -> None:
        """Start afresh (after ``push(..., last=True)``): the next push is a new signal."""
        if self._stream is not None:
            self._stream.clear()


class StreamResampler:
    """Block-by-block resampling for a device that cannot run at 24 kHz (see module doc)."""

    def __init__(self, src: int, dst: int) -> None:
        self.src, self.dst = src, dst
        self._stream = _stream(src, dst)
        self._fifo = np.zeros(0, dtype=np.float32)
        self._in_total = 0
        self._out_total = 0
        self.delay = 0  # output samples of silence put in front (the fixed lag)

    def push(self, block: np.ndarray) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32).reshape(-1)
        if self._in_total == 0 and block.size:
            self.delay = _lead(self.src, self.dst, block.size)
            self._fifo = np.zeros(self.delay, dtype=np.float32)
        self._in_total += block.size
        chunk = self._stream.resample_chunk(block)
        self._fifo = np.concatenate([self._fifo, np.asarray(chunk, dtype=np.float32)])
        want = self._in_total * self.dst // self.src - self._out_total
        if self._fifo.size < want:  # block size changed mid-stream: widen the lag once more
            gap = want - self._fifo.size
            self._fifo = np.concatenate([np.zeros(gap, np.float32), self._fifo])
            self.delay += gap
        out, self._fifo = self._fifo[:want], self._fifo[want:]
        self._out_total += want
        return out


def _stream(src: int, dst: int) -> Any:  # soxr.ResampleStream (no type stubs)
    import soxr

    return soxr.ResampleStream(src, dst, 1, dtype="float32")


def _lead(src: int, dst: int, block: int) -> int:
    """The smallest lead of silence after which soxr's uneven chunks never leave a block
    short (its chunk sizes depend only on the block size, so zeros show the pattern)."""
    probe, zeros = _stream(src, dst), np.zeros(block, dtype=np.float32)
    have = need = lead = 0
    for k in range(1, _LEAD_PROBE_BLOCKS + 1):
        have += probe.resample_chunk(zeros).size
        need = k * block * dst // src
        lead = max(lead, need - have)
    return lead
