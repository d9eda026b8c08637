"""WAV files in and out: any rate / channel count in, 24 kHz mono 16-bit out.

RIFF/WAVE files are parsed here, header first: a hostile header (rate 0, a 2 Hz rate that
would resample into gigabytes, a data size past the end of the file) is refused before a
sample is decoded, and :class:`WavStream` reads a long input WAV a chunk at a time instead of
decoding it whole. Other formats (FLAC, Ogg, MP3) go through sphn.

The writer keeps its header honest while it writes (sizes patched every half second of
audio, samples written unbuffered), so a WAV cut short by SIGKILL or a power cut plays
what is on disk.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from entropi.audio.resample import ChunkResampler, resample
from entropi.core.constants import SAMPLE_RATE
from entropi.core.errors import InputError
from entropi.core.files import (
    PathKindError,
    make_private_dirs,
    open_private,
    open_regular,
    stat_kind,
)

# Real audio is 8 kHz (telephone) to 384 kHz (studio); anything else is a broken header.
MIN_RATE, MAX_RATE = 4_000, 384_000
MAX_CHANNELS = 32
_FORMAT_PCM, _FORMAT_FLOAT, _FORMAT_EXTENSIBLE = 1, 3, 0xFFFE
_CHUNK_SECONDS = 2.0  # input decoded per step by WavStream: bounded memory, short steps
_CONVERT_HINT = "convert with `sox in.any -r 24000 -c 1 out.wav`"


@dataclass(frozen=True)
class WavInfo:
    path: Path
    rate: int
    channels: int
    bits: int
    is_float: bool
    data_offset: int
    frames: int  # sample frames actually on disk

    @property
    def seconds(self) -> float:
        return self.frames / self.rate


def _unreadable(path: Path, reason: str) -> InputError:
    return InputError(f"{path}: not a readable audio file ({reason}); give a WAV file "
                      f"(e.g. {_CONVERT_HINT})")


def _open(path: Path) -> BinaryIO:
    """Read-only, refusing a FIFO or device rather than blocking on it."""
    return os.fdopen(open_regular(path), "rb")


def is_riff(path: Path) -> bool:
    with _open(path) as f:
        head = f.read(12)
    return len(head) == 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def probe_wav(path: str | Path) -> WavInfo:
    """Parse and sanity-check a RIFF/WAVE header without decoding any audio."""
    path = Path(path)
    size = path.stat().st_size
    fmt: tuple[int, int, int, int] | None = None
    with _open(path) as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise _unreadable(path, "no RIFF/WAVE header")
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                raise _unreadable(path, "no data chunk" if fmt else "no fmt chunk")
            cid, clen = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                body = f.read(min(clen, 64))
                if clen < 16 or len(body) < 16:
                    raise _unreadable(path, "truncated fmt chunk")
                tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
                if tag == _FORMAT_EXTENSIBLE and len(body) >= 26:
                    tag = struct.unpack("<H", body[24:26])[0]
                fmt = (tag, channels, rate, bits)
                f.seek(clen - len(body) + (clen & 1), os.SEEK_CUR)
            elif cid == b"data":
                if fmt is None:
                    raise _unreadable(path, "data before the fmt chunk")
                offset = f.tell()
                break
            else:
                f.seek(clen + (clen & 1), os.SEEK_CUR)
                if f.tell() > size:
                    raise _unreadable(path, "no data chunk")
    tag, channels, rate, bits = fmt
    if tag not in (_FORMAT_PCM, _FORMAT_FLOAT):
        raise _unreadable(path, f"WAV encoding {tag} is not PCM or float")
    if (tag == _FORMAT_PCM and bits not in (8, 16, 24, 32)) or (
            tag == _FORMAT_FLOAT and bits not in (32, 64)):
        raise _unreadable(path, f"{bits}-bit samples are not supported")
    if not 1 <= channels <= MAX_CHANNELS:
        raise _unreadable(path, f"header claims {channels} channels")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise _unreadable(path, f"header claims a sample rate of {rate} Hz; real audio is "
                                f"{MIN_RATE}-{MAX_RATE} Hz")
    # The data size in the header may be 0 or huge (a writer killed mid-file): what counts
    # is what is on disk.
    available = max(0, size - offset)
    frames = available // (channels * bits // 8)
    return WavInfo(path, rate, channels, bits, tag == _FORMAT_FLOAT, offset, frames)


def _decode(raw: bytes, info: WavInfo) -> np.ndarray:
    """Interleaved sample bytes → mono float32 (channels averaged), like sphn's scaling."""
    width = info.bits // 8
    raw = raw[: len(raw) - len(raw) % (width * info.channels)]
    if info.is_float:
        pcm = np.frombuffer(raw, dtype="<f4" if width == 4 else "<f8").astype(np.float32)
    elif width == 1:
        pcm = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8  # sign-extend 24 bits
        pcm = ints.astype(np.float32) / float(1 << 23)
    else:
        ints = np.frombuffer(raw, dtype="<i2" if width == 2 else "<i4")
        pcm = ints.astype(np.float32) / float(1 << (info.bits - 1))
    if info.channels > 1:
        pcm = pcm.reshape(-1, info.channels).mean(axis=1)
    return np.nan_to_num(pcm, nan=0.0, posinf=0.0, neginf=0.0)


class WavStream:
    """A WAV file as 24 kHz mono float32, read a chunk at a time (bounded memory).

    Output equals :func:`resample` of the whole file: the chunks go through one stateful
    soxr stream, which shares the one-shot path's filter.
    """

    def __init__(self, path: str | Path, sample_rate: int = SAMPLE_RATE) -> None:
        self.info = probe_wav(path)
        self.rate = sample_rate
        self.total = round(self.info.frames * sample_rate / self.info.rate)  # output samples
        self._step = max(1, int(_CHUNK_SECONDS * self.info.rate))  # input frames per read
        self._resampler = ChunkResampler(self.info.rate, sample_rate)
        self._file = _open(self.info.path)  # closed in close()
        self._in_pos = 0  # next input sample frame to read
        self._out: np.ndarray = np.zeros(0, np.float32)
        self.position = 0  # output samples handed out

    def _refill(self) -> None:
        start = self._in_pos
        stop = min(start + self._step, self.info.frames)
        block = self.info.channels * self.info.bits // 8
        self._file.seek(self.info.data_offset + start * block)
        pcm = _decode(self._file.read((stop - start) * block), self.info)
        self._in_pos = stop
        chunk = self._resampler.push(pcm, last=stop >= self.info.frames)
        self._out = np.concatenate([self._out, chunk])

    def read(self, n: int) -> np.ndarray:
        """Up to ``n`` output samples (fewer only at the end of the file)."""
        n = min(n, self.total - self.position)
        while self._out.size < n and self._in_pos < self.info.frames:
            self._refill()
        if self._out.size < n:  # soxr gave a sample less than the rounded length: the end
            self.total = self.position + self._out.size
            n = self._out.size
        out, self._out = self._out[:n], self._out[n:]
        self.position += out.size
        return out

    def close(self) -> None:
        self._file.close()


def _read_other(path: Path) -> tuple[np.ndarray, int]:
    """Non-RIFF formats through sphn; its Rust panics (a PanicException is a BaseException)
    become one clear line like every other unreadable file."""
    import sphn  # imported here to keep `entropi --help` light

    try:
        pcm, rate = sphn.read(str(path))
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:  # pyo3's PanicException is a BaseException
        reason = str(exc).split(": ", 1)[-1].splitlines()[0] if str(exc) else type(exc).__name__
        raise _unreadable(path, reason) from None
    if not MIN_RATE <= int(rate) <= MAX_RATE:
        raise _unreadable(path, f"sample rate {rate} Hz")
    if pcm.ndim != 2 or pcm.shape[1] == 0:
        raise InputError(f"{path}: contains no audio samples; record or pick another file")
    mono = pcm.mean(axis=0) if pcm.shape[0] > 1 else pcm[0]
    return np.nan_to_num(mono.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0), int(rate)


def audio_seconds(path: str | Path) -> float | None:
    """Duration from the header alone for a WAV (after its checks); None for other formats."""
    path = Path(path)
    _require_file(path)
    return probe_wav(path).seconds if is_riff(path) else None


def _require_file(path: Path) -> None:
    try:
        st = stat_kind(path)
    except PathKindError as exc:
        raise InputError(f"{path}: {exc}; {exc.fix('an audio file')}") from None
    if st is None or not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: no such audio file; check the path")
    if path.stat().st_size == 0:
        raise _unreadable(path, "the file is empty")


def read_wav(path: str | Path, sample_rate: int = SAMPLE_RATE,
             max_seconds: float | None = None) -> np.ndarray:
    """Decode an audio file to mono float32 at ``sample_rate`` (channels are averaged).

    A missing, empty, corrupt or non-audio file, or one longer than ``max_seconds`` (checked
    from the header, before decoding), raises :class:`InputError` naming it.
    """
    path = Path(path)
    _require_file(path)
    if is_riff(path):
        stream = WavStream(path, sample_rate)
        try:
            if stream.info.frames == 0:
                raise InputError(f"{path}: contains no audio samples; record or pick another "
                                 "file")
            _check_length(path, stream.info.seconds, max_seconds)
            return stream.read(stream.total)
        finally:
            stream.close()
    mono, rate = _read_other(path)
    _check_length(path, mono.size / rate, max_seconds)
    return resample(mono, rate, sample_rate)


def _check_length(path: Path, seconds: float, max_seconds: float | None) -> None:
    if max_seconds is not None and seconds > max_seconds + 1e-6:
        raise InputError(f"{path}: {seconds:.1f} s of audio is over the {max_seconds:g} s "
                         "allowed here; trim it")


class WavWriter:
    """Streams mono float frames into a 16-bit WAV (0600, in 0700 folders it creates).

    Samples go straight to the kernel (no user-space buffer) and the RIFF/data sizes are
    patched every ``header_every`` samples, so after SIGKILL the header claims what is on
    disk give or take half a second; ``close`` writes the exact sizes.
    """

    def __init__(self, path: str | Path, sample_rate: int = SAMPLE_RATE,
                 header_every: int = SAMPLE_RATE // 2) -> None:
        self.path = Path(path)
        try:
            make_private_dirs(self.path.parent)
            self._fd = open_private(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot write WAV ({exc.strerror}); "
                             "choose a writable path") from None
        self.samples = 0
        self._patched = 0
        self._every = header_every
        header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36, b"WAVE", b"fmt ", 16,
                             _FORMAT_PCM, 1, sample_rate, sample_rate * 2, 2, 16, b"data", 0)
        self._write(header)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # a short write must not lose the rest
            view = view[os.write(self._fd, view):]

    def _patch_header(self) -> None:
        size = self.samples * 2
        os.pwrite(self._fd, struct.pack("<I", 36 + size), 4)
        os.pwrite(self._fd, struct.pack("<I", size), 40)
        self._patched = self.samples

    def write(self, pcm: np.ndarray) -> None:
        ints = (np.clip(np.asarray(pcm, dtype=np.float32), -1.0, 1.0) * 32767.0).round()
        self._write(ints.astype("<i2").tobytes())
        self.samples += ints.size
        if self.samples - self._patched >= self._every:
            self._patch_header()

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            self._patch_header()
        finally:
            os.close(self._fd)
            self._fd = -1


def write_wav(path: str | Path, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write a mono float signal as a 16-bit PCM WAV."""
    writer = WavWriter(path, sample_rate)
    try:
        writer.write(pcm)
    finally:
        writer.close()


class ArraySource:
    """An already decoded signal behind the same ``read``/``close`` as :class:`WavStream`."""

    def __init__(self, pcm: np.ndarray) -> None:
        self._pcm = np.asarray(pcm, dtype=np.float32)
        self.total = int(self._pcm.size)
        self.position = 0

    def read(self, n: int) -> np.ndarray:
        out = self._pcm[self.position:self.position + n]
        self.position += out.size
        return out

    def close(self) -> None:
        pass


def open_wav_source(path: str | Path, sample_rate: int = SAMPLE_RATE) -> WavStream | ArraySource:
    """An input file to read frame by frame: WAVs streamed from disk (a two-hour WAV is
    not decoded whole), other formats decoded once."""
    path = Path(path)
    _require_file(path)
    if not is_riff(path):
        return ArraySource(read_wav(path, sample_rate))
    stream = WavStream(path, sample_rate)
    if stream.info.frames == 0:
        stream.close()
        raise InputError(f"{path}: contains no audio samples; record or pick another file")
    return stream
