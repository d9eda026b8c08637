"""AudioIO with WAV files at both ends (no PortAudio needed)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from entropi.audio.wav import read_wav, write_wav
from entropi.config import AudioSection
from entropi.core.constants import FRAME_SIZE
from entropi.core.errors import InputError
from entropi.transports.local import open_audio


def _input(tmp_path: Path, seconds: float = 1.1) -> tuple[Path, np.ndarray]:
    t = np.arange(round(24_000 * seconds)) / 24_000
    pcm = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    path = tmp_path / "in.wav"
    write_wav(path, pcm)
    return path, read_wav(path)


async def test_wav_to_wav_fast_round_trip(tmp_path: Path) -> None:
    src, pcm = _input(tmp_path)
    out = tmp_path / "sub" / "out.wav"
    audio = open_audio(AudioSection(input="wav", input_wav=src, output="wav", output_wav=out,
                                    fast=True))
    await audio.start()
    frames = 0
    while (frame := await audio.read_frame()) is not None:
        assert frame.shape == (FRAME_SIZE,) and frame.dtype == np.float32
        audio.write_frame(frame)
        frames += 1
    await audio.close()
    assert frames == -(-pcm.size // FRAME_SIZE)  # 26400 samples → 14 frames, last zero-padded
    back = read_wav(out)
    assert back.size == frames * FRAME_SIZE
    assert np.max(np.abs(back[:pcm.size] - pcm)) < 1e-4 and not back[pcm.size:].any()
    stats = audio.stats()
    assert (stats.frames_in, stats.frames_out, stats.underruns, stats.callbacks) == \
        (frames, frames, 0, 0)


def test_wav_only_runs_do_not_import_sounddevice(tmp_path: Path) -> None:
    """A fresh interpreter: this test process may have loaded PortAudio already."""
    src, _ = _input(tmp_path, 0.2)
    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from entropi.transports.local import open_audio\n"
        "from entropi.config import AudioSection\n"
        f"cfg = AudioSection(input='wav', input_wav=Path({str(src)!r}), output='wav', "
        f"output_wav=Path({str(tmp_path / 'o.wav')!r}), fast=True)\n"
        "async def go():\n"
        "    a = open_audio(cfg); await a.start()\n"
        "    while (f := await a.read_frame()) is not None: a.write_frame(f)\n"
        "    await a.close()\n"
        "asyncio.run(go())\n"
        "print('sounddevice' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


async def test_paced_input_counts_frames_a_stalled_consumer_picks_up_late(
        tmp_path: Path) -> None:
    src, _ = _input(tmp_path, 1.0)
    audio = open_audio(AudioSection(input="wav", input_wav=src, output="wav",
                                    output_wav=tmp_path / "o.wav"))
    await audio.start()
    await asyncio.sleep(0.5)  # the consumer stalls; frames 0-3 were due by 0.32 s
    for _ in range(4):
        assert await audio.read_frame() is not None
    await audio.close()
    assert audio.stats().late_frames >= 3


def test_bad_wav_paths_fail_before_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(InputError, match=r"bad\.wav: not a readable audio file"):
        open_audio(AudioSection(input="wav", input_wav=bad, output="wav",
                                output_wav=tmp_path / "o.wav"))
    src, _ = _input(tmp_path, 0.2)
    with pytest.raises(InputError, match=r"audio\.output_wav: .* is also the input"):
        open_audio(AudioSection(input="wav", input_wav=src, output="wav", output_wav=src))
