"""WAV reading/writing and resampling, on real files made by the project's own writer."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from entropi.audio.resample import StreamResampler, resample
from entropi.audio.wav import read_wav, write_wav
from entropi.core.errors import InputError


def _tone(rate: int, seconds: float, hz: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _write_raw(path: Path, pcm: np.ndarray, rate: int) -> None:
    """Multi-channel 16-bit WAV via the stdlib (entropi itself only writes mono)."""
    frames = pcm.reshape(pcm.shape[0], -1) if pcm.ndim > 1 else pcm[None, :]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(frames.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((frames.T * 32767).round().astype("<i2").tobytes())


@pytest.mark.parametrize("rate", [16_000, 44_100, 48_000])
def test_round_trip_resamples_to_24k_keeping_the_signal(tmp_path: Path, rate: int) -> None:
    src = _tone(rate, 1.0)
    path = tmp_path / f"in_{rate}.wav"
    _write_raw(path, src, rate)
    pcm = read_wav(path)
    assert pcm.dtype == np.float32 and pcm.ndim == 1
    assert pcm.size == 24_000  # exactly one second, no padding or delay
    expected = _tone(24_000, 1.0)
    inner = slice(200, -200)  # the kernel sees zeros past the ends
    assert np.max(np.abs(pcm[inner] - expected[inner])) < 2e-3

    out = tmp_path / "out.wav"
    write_wav(out, pcm)
    with wave.open(str(out)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24_000, 1, 2)
    again = read_wav(out)
    assert np.max(np.abs(again - pcm)) < 1e-4  # only 16-bit quantisation


def test_stereo_input_is_averaged_to_mono(tmp_path: Path) -> None:
    left, right = _tone(48_000, 0.5, 440), _tone(48_000, 0.5, 440, amp=0.1)
    path = tmp_path / "stereo.wav"
    _write_raw(path, np.stack([left, right]), 48_000)
    pcm = read_wav(path)
    assert pcm.size == 12_000
    # (0.5 + 0.1) / 2 = 0.3 peak: both channels contribute.
    assert abs(np.max(np.abs(pcm[200:-200])) - 0.3) < 5e-3


@pytest.mark.parametrize("content, reason", [
    (b"", "not a readable audio file"),
    (b"hello, I am a text file, not audio " * 40, "not a readable audio file"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00junkjunk", "not a readable audio file"),
])
def test_bad_files_raise_input_error_naming_the_file(tmp_path: Path, content: bytes,
                                                     reason: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_wav(path)
    assert str(path) in err.value.message and reason in err.value.message
    assert "\n" not in err.value.message


def test_missing_and_sample_less_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such audio file"):
        read_wav(tmp_path / "nope.wav")
    empty = tmp_path / "empty.wav"
    _write_raw(empty, np.zeros(0, np.float32), 16_000)
    with pytest.raises(InputError, match="no audio samples"):
        read_wav(empty)


def test_unwritable_output_raises_input_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write WAV"):
        write_wav(blocker / "out.wav", np.zeros(10, np.float32))


def test_downsampling_removes_content_above_the_new_nyquist() -> None:
    high = _tone(48_000, 0.5, hz=15_000)  # above 12 kHz: must not alias into the output
    assert np.max(np.abs(resample(high, 48_000, 24_000)[200:-200])) < 5e-3


@pytest.mark.parametrize("rate", [44_100, 48_000, 16_000])
def test_stream_resampler_yields_whole_frames_matching_the_offline_result(rate: int) -> None:
    block = 1920 * rate // 24_000
    src = _tone(rate, 2.0)  # 25 whole device blocks
    rs = StreamResampler(rate, 24_000)
    outs = [rs.push(src[i:i + block]) for i in range(0, src.size, block)]
    assert {o.size for o in outs} == {1920}
    stream = np.concatenate(outs)
    assert rs.delay < 1920  # a fixed lag under one frame
    t = (np.arange(stream.size) - rs.delay) / 24_000
    expected = 0.5 * np.sin(2 * np.pi * 440 * t)
    inner = slice(rs.delay + 500, -500)  # the signal, past the lead of silence
    assert np.max(np.abs(stream[inner] - expected[inner])) < 2e-3
