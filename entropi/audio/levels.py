"""Signal levels in dBFS (0 dBFS = a full-scale square wave, RMS 1.0)."""

from __future__ import annotations

import numpy as np

SILENCE_DBFS = -120.0  # what digital silence reports instead of -inf
_BLOCK = 240  # 10 ms at 24 kHz: the unit for "active" loudness
_ACTIVE_RANGE_DB = 35.0  # blocks this far below the loudest count as pauses, not speech


def rms_dbfs(pcm: np.ndarray) -> float:
    """RMS level of the whole signal."""
    pcm = np.asarray(pcm, dtype=np.float32)
    if pcm.size == 0:
        return SILENCE_DBFS
    power = float(np.mean(pcm.astype(np.float64) ** 2))
    return max(SILENCE_DBFS, 10.0 * np.log10(power)) if power > 0 else SILENCE_DBFS


def _block_dbfs(pcm: np.ndarray) -> np.ndarray:
    n = pcm.size // _BLOCK
    if n == 0:
        return np.array([rms_dbfs(pcm)])
    power = np.mean(pcm[: n * _BLOCK].astype(np.float64).reshape(n, _BLOCK) ** 2, axis=1)
    return 10.0 * np.log10(np.maximum(power, 1e-12))


def active_dbfs(pcm: np.ndarray) -> float:
    """RMS over the speech parts only, so pauses inside a clip don't lower its loudness."""
    blocks = _block_dbfs(np.asarray(pcm, dtype=np.float32))
    loud = blocks[blocks > blocks.max() - _ACTIVE_RANGE_DB]
    power = np.mean(10.0 ** (loud / 10.0))
    return max(SILENCE_DBFS, float(10.0 * np.log10(power)))


def trim_silence(pcm: np.ndarray, margin_seconds: float = 0.05,
                 sample_rate: int = 24_000) -> np.ndarray:
    """Cut leading / trailing near-silence (quieter than the active range), keeping a margin."""
    blocks = _block_dbfs(pcm)
    loud = np.flatnonzero(blocks > blocks.max() - _ACTIVE_RANGE_DB)
    if loud.size == 0:
        return pcm
    margin = int(margin_seconds * sample_rate)
    start = max(0, loud[0] * _BLOCK - margin)
    end = min(pcm.size, (loud[-1] + 1) * _BLOCK + margin)
    return pcm[start:end]


def apply_fades(pcm: np.ndarray, seconds: float, sample_rate: int = 24_000) -> np.ndarray:
    """Raised-cosine fade in and out, so a clip starts and ends at zero without a click."""
    out = np.array(pcm, dtype=np.float32, copy=True)
    n = min(int(seconds * sample_rate), out.size // 2)
    if n > 0:
        ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))).astype(np.float32)
        out[:n] *= ramp
        out[-n:] *= ramp[::-1]
    return out
