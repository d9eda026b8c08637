"""Hostile WAV headers are refused before decoding, a long input WAV is streamed, and the
output WAV stays playable and private after an unclean exit."""

from __future__ import annotations

import os
import signal
import stat
import struct
import subprocess
import sys
import tracemalloc
import wave

import numpy as np
import pytest

from entropi.audio.resample import resample
from entropi.audio.wav import WavStream, WavWriter, read_wav
from entropi.config import AudioSection
from entropi.core.constants import FRAME_SIZE
from entropi.core.errors import InputError
from entropi.transports.local import open_audio


def _header(rate: int = 24_000, channels: int = 1, bits: int = 16, tag: int = 1,
            data_size: int = 0, fmt_size: int = 16) -> bytes:
    block = max(1, channels * bits // 8)
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    return (struct.pack("<4sI4s", b"RIFF", 36 + data_size, b"WAVE")
            + struct.pack("<4sI", b"fmt ", fmt_size) + fmt[:fmt_size]
            + struct.pack("<4sI", b"data", data_size))


@pytest.mark.parametrize("name,content,reason", [
    ("rate-0", _header(rate=0) + b"\0" * 4800, "sample rate of 0 Hz"),
    ("rate-2", _header(rate=2) + b"\0" * 40_000, "sample rate of 2 Hz"),
    ("rate-1mhz", _header(rate=1_000_000) + b"\0" * 4800, "sample rate of 1000000 Hz"),
    ("no-channels", _header(channels=0) + b"\0" * 4800, "0 channels"),
    ("many-channels", _header(channels=500) + b"\0" * 4800, "500 channels"),
    ("12-bit", _header(bits=12) + b"\0" * 4800, "12-bit samples"),
    ("adpcm", _header(tag=2) + b"\0" * 4800, "WAV encoding 2"),
    ("short-fmt", _header(fmt_size=8), "truncated fmt chunk"),
    ("no-data", _header()[:-8], "no data chunk"),
    ("not-riff", b"OggS" + b"\0" * 100, "not a readable audio file"),
])
def test_hostile_headers_are_one_line_before_decoding(tmp_path, name, content, reason):
    path = tmp_path / f"{name}.wav"
    path.write_bytes(content)
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as err:
            read_wav(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "\n" not in err.value.message and str(path) in err.value.message
    assert "not a readable audio file" in err.value.message and reason in err.value.message
    assert peak < 5_000_000  # refused from the header: nothing was decoded or resampled


def test_a_header_claiming_more_data_than_the_file_holds(tmp_path):
    """A writer killed mid-file leaves a wrong data size: what is on disk counts."""
    pcm = (0.25 * np.sin(np.arange(4800) / 7)).astype(np.float32)
    ints = (pcm * 32767).round().astype("<i2").tobytes()
    path = tmp_path / "cut.wav"
    path.write_bytes(_header(data_size=10**9) + ints)
    assert np.max(np.abs(read_wav(path) - pcm)) < 1e-4


@pytest.mark.parametrize("bits,dtype,scale,tag", [
    (8, np.uint8, None, 1), (24, None, None, 1), (32, "<i4", 2**31, 1), (32, "<f4", 1.0, 3),
])
def test_sample_formats_decode_like_sphn(tmp_path, bits, dtype, scale, tag):
    import sphn

    rng = np.random.default_rng(bits + tag)
    pcm = (rng.uniform(-0.9, 0.9, (2, 4410))).astype(np.float32)  # stereo, 44.1 kHz
    inter = pcm.T.reshape(-1)
    if bits == 8:
        raw = np.round(inter * 127 + 128).astype(np.uint8).tobytes()
    elif bits == 24:
        ints = np.round(inter * (2**23 - 1)).astype("<i4")
        raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints)
    else:
        raw = (inter if tag == 3 else np.round(inter * (scale - 1))).astype(dtype).tobytes()
    path = tmp_path / f"f{bits}_{tag}.wav"
    path.write_bytes(_header(rate=44_100, channels=2, bits=bits, tag=tag, data_size=len(raw))
                     + raw)
    ref, rate = sphn.read(str(path))
    expected = resample(ref.mean(axis=0).astype(np.float32), rate, 24_000)
    assert np.max(np.abs(read_wav(path) - expected)) < 1e-5


@pytest.mark.parametrize("rate", [24_000, 44_100, 16_000])
def test_streamed_frames_equal_the_whole_file_resampled(tmp_path, rate):
    t = np.arange(round(rate * 5.3)) / rate
    pcm = (0.4 * np.sin(2 * np.pi * 330 * t) * np.sin(t)).astype(np.float32)
    path = tmp_path / "in.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((pcm * 32767).round().astype("<i2").tobytes())
    whole = resample(((pcm * 32767).round() / 32768).astype(np.float32), rate, 24_000)
    stream = WavStream(path)
    parts = []
    while stream.position < stream.total:
        parts.append(stream.read(FRAME_SIZE))  # chunk edges fall inside frames
    stream.close()
    got = np.concatenate(parts)
    assert got.size == whole.size == round(pcm.size * 24_000 / rate)
    assert np.max(np.abs(got - whole)) < 1e-6


async def test_a_long_input_wav_is_streamed_not_decoded_whole(tmp_path):
    """30 minutes of 48 kHz audio (a sparse file: no disk used): decoding it whole would
    take ~350 MB of float32 before resampling; streaming holds a few seconds."""
    path = tmp_path / "long.wav"
    frames = 48_000 * 60 * 30
    with open(path, "wb") as f:
        f.write(_header(rate=48_000, data_size=frames * 2))
        f.truncate(44 + frames * 2)
    tracemalloc.start()
    try:
        audio = open_audio(AudioSection(input="wav", input_wav=path, output="wav",
                                        output_wav=tmp_path / "o.wav", fast=True))
        await audio.start()
        for _ in range(60):
            assert (await audio.read_frame()) is not None
        await audio.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert audio._wav_in.total == 24_000 * 60 * 30
    assert peak < 40_000_000, peak


_WRITER = """
import sys, time
import numpy as np
from entropi.audio.wav import WavWriter
w = WavWriter(sys.argv[1])
frame = (0.3 * np.sin(np.arange(1920) / 5)).astype(np.float32)
for _ in range(int(sys.argv[2])):
    w.write(frame)
print("written", flush=True)
time.sleep(60)
"""


def test_output_wav_after_sigkill_claims_what_is_on_disk(tmp_path):
    out = tmp_path / "sub" / "dir" / "out.wav"
    frames = 168  # 13.44 s, like the audit's run
    old = os.umask(0)  # the files must be private whatever the umask
    try:
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(out), str(frames)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "written"
    finally:
        os.umask(old)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    on_disk = out.stat().st_size - 44
    assert on_disk == frames * FRAME_SIZE * 2  # nothing was held back in a buffer
    with wave.open(str(out)) as w:
        claimed = w.getnframes() * 2
    assert on_disk - claimed <= 24_000  # the header lags by at most half a second
    assert len(read_wav(out)) >= on_disk // 2 - 12_000
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    for folder in (out.parent, out.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_close_writes_exact_sizes(tmp_path):
    writer = WavWriter(tmp_path / "o.wav")
    writer.write(np.zeros(1000, np.float32))
    writer.close()
    writer.close()  # twice is harmless
    with wave.open(str(tmp_path / "o.wav")) as w:
        assert w.getnframes() == 1000
