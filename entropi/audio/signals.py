"""Test and benchmark signals for hearing: levels, pink noise, frame labels, espeak-ng speech."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from entropi.audio.levels import rms_dbfs
from entropi.core.constants import FRAME_SIZE, SAMPLE_RATE


def at_level(pcm: np.ndarray, dbfs: float) -> np.ndarray:
    """Scale so the *active* speech level (frames within 30 dB of the loudest) is ``dbfs``."""
    frames = pcm[: len(pcm) // FRAME_SIZE * FRAME_SIZE].reshape(-1, FRAME_SIZE)
    levels = np.array([rms_dbfs(f) for f in frames])
    active = frames[levels > levels.max() - 30]
    rms = float(np.sqrt(np.mean(active.astype(np.float64) ** 2)))
    return (pcm * (10 ** (dbfs / 20) / rms)).astype(np.float32)


def pink_noise(n: int, dbfs: float, seed: int = 0) -> np.ndarray:
    """1/f noise (3 dB per octave down) at an RMS level of ``dbfs``."""
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    pink = np.fft.irfft(spec / np.sqrt(f), n)
    return (pink * (10 ** (dbfs / 20) / np.sqrt(np.mean(pink**2)))).astype(np.float32)


def speech_frames(clean: np.ndarray, floor_dbfs: float = 30.0) -> np.ndarray:
    """Ground-truth labels per 80 ms frame of a clean recording: speech where the frame is
    within ``floor_dbfs`` dB of the loudest frame."""
    frames = clean[: len(clean) // FRAME_SIZE * FRAME_SIZE].reshape(-1, FRAME_SIZE)
    levels = np.array([rms_dbfs(f) for f in frames])
    return levels > levels.max() - floor_dbfs


def espeak(text: str, rate: int = SAMPLE_RATE, wpm: int = 150) -> np.ndarray:
    """espeak-ng speech (float32 mono at ``rate``), resampled by entropi's WAV reader."""
    from entropi.audio.wav import read_wav

    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (scripts/system-packages.txt)")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "say.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(wpm), "-w", str(raw), text],
                       check=True, capture_output=True)
        return read_wav(raw, rate)
