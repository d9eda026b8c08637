"""24 kHz frames → 16 kHz for the speech models (silero-vad, whisper), with soxr."""

from __future__ import annotations

import numpy as np
import soxr

from entropi.constants import SAMPLE_RATE

SPEECH_RATE = 16_000


def to_speech_rate(pcm: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """One whole clip (a user turn) to 16 kHz float32."""
    pcm = np.asarray(pcm, dtype=np.float32)
    if rate == SPEECH_RATE or pcm.size == 0:
        return pcm
    return soxr.resample(pcm, rate, SPEECH_RATE, quality="HQ").astype(np.float32, copy=False)


class StreamResampler:
    """Frame by frame: soxr keeps the filter state between calls; its output block sizes
    vary by a sample or so, which callers buffer."""

    def __init__(self, rate: int = SAMPLE_RATE) -> None:
        self._rs = soxr.ResampleStream(rate, SPEECH_RATE, 1, dtype="float32", quality="HQ")

    def __call__(self, pcm: np.ndarray) -> np.ndarray:
        return self._rs.resample_chunk(np.asarray(pcm, dtype=np.float32))
