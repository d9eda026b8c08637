"""WAV files in and out: any rate / channel count in, 24 kHz mono 16-bit out."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from entropi.constants import SAMPLE_RATE
from entropi.errors import InputError
from entropi.resample import resample


def read_wav(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode an audio file to mono float32 at ``sample_rate`` (channels are averaged).

    A missing, empty, corrupt or non-audio file raises :class:`InputError` naming it.
    """
    import sphn  # decodes WAV (and more) natively; imported here to keep `entropi --help` light

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such audio file; check the path")
    try:
        pcm, rate = sphn.read(str(path))
    except (ValueError, OSError) as exc:
        reason = str(exc).split(": ", 1)[-1]
        raise InputError(
            f"{path}: not a readable audio file ({reason}); give a WAV file "
            "(e.g. convert with `sox in.any -r 24000 -c 1 out.wav`)"
        ) from None
    if pcm.ndim != 2 or pcm.shape[1] == 0:
        raise InputError(f"{path}: contains no audio samples; record or pick another file")
    mono = pcm.mean(axis=0) if pcm.shape[0] > 1 else pcm[0]
    mono = np.nan_to_num(mono.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return resample(mono, int(rate), sample_rate)


class WavWriter:
    """Streams mono float frames into a 16-bit WAV; the header is finalised by ``close``."""

    def __init__(self, path: str | Path, sample_rate: int = SAMPLE_RATE) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise InputError(f"{self.path}: cannot write WAV ({exc.strerror}); "
                             "choose a writable path") from None
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)
        self.samples = 0

    def write(self, pcm: np.ndarray) -> None:
        ints = (np.clip(np.asarray(pcm, dtype=np.float32), -1.0, 1.0) * 32767.0).round()
        self._wav.writeframesraw(ints.astype("<i2").tobytes())
        self.samples += ints.size

    def close(self) -> None:
        self._wav.close()


def write_wav(path: str | Path, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write a mono float signal as a 16-bit PCM WAV."""
    writer = WavWriter(path, sample_rate)
    try:
        writer.write(pcm)
    finally:
        writer.close()
