"""A real duplex stream on the JACK dummy device (see conftest.py).

JACK's dummy backend does not route playback to capture, so each test that checks frame
order connects the stream's own output port to its own input port with ``jack_connect``:
what ``write_frame`` queued is played by the callback and captured one period later, and
comes back through ``read_frame``. Each written frame carries its sequence number as a
constant sample value (k / 256, exact in float32).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from entropi.audio.wav import write_wav
from entropi.config import AudioSection
from entropi.core.constants import FRAME_SIZE
from entropi.core.errors import DeviceError
from entropi.transports.jack import JackDummy, jack_connect, jack_ports
from entropi.transports.local import AudioIO, open_audio

pytestmark = pytest.mark.timeout(60)


def _marker(k: int) -> np.ndarray:
    return np.full(FRAME_SIZE, k / 256, dtype=np.float32)


def _markers(frames: list[np.ndarray]) -> list[int]:
    """Sequence numbers seen, in order, one per frame (silence = 0 is skipped)."""
    out = []
    for frame in frames:
        assert np.all(frame == frame[0]), "a looped-back frame must be one whole written frame"
        k = round(float(frame[0]) * 256)
        if k:
            out.append(k)
    return out


async def _open_looped(**kw: object) -> AudioIO:
    inputs, outputs = set(jack_ports("input")), set(jack_ports("output"))
    audio = open_audio(AudioSection(input_device="system", output_device="system",
                                    echo_cancellation="off", **kw))
    await audio.start()
    ours_in = [p for p in jack_ports("input") if p not in inputs]
    ours_out = [p for p in jack_ports("output") if p not in outputs]
    assert len(ours_in) == 1 and len(ours_out) == 1, (ours_in, ours_out)
    jack_connect(ours_out[0], ours_in[0])
    return audio


async def test_duplex_runs_5s_without_xruns_and_frames_come_back_in_order(
        jack: JackDummy) -> None:
    # A roomy input queue: the jack_lsp / jack_connect calls above delay the first read by
    # a few periods, which must not count as a drop in the steady state measured here.
    audio = await _open_looped(queue_frames=32)
    received = []
    try:
        for k in range(1, 66):  # 65 frames = 5.2 s of device time
            frame = await audio.read_frame()
            assert frame is not None and frame.shape == (FRAME_SIZE,)
            received.append(frame)
            audio.write_frame(_marker(k))
        # Collect what is still in flight (input backlog, jitter buffer, loopback period).
        for _ in range(30):
            if 65 in _markers(received[-1:]):
                break
            frame = await audio.read_frame()
            assert frame is not None
            received.append(frame)
    finally:
        await audio.close()
    stats = audio.stats()
    assert stats.xruns == 0 and stats.overflows == 0
    assert stats.dropped_in == 0 and stats.dropped_out == 0
    assert stats.callbacks >= 66 and stats.frames_in == stats.callbacks  # one frame per period
    # Every written frame came back exactly once, in the order written.
    assert _markers(received) == list(range(1, 66))


async def test_slow_consumer_drops_oldest_input_instead_of_blocking(jack: JackDummy) -> None:
    audio = open_audio(AudioSection(input_device="system", output_device="system",
                                    echo_cancellation="off", queue_frames=4))
    await audio.start()
    try:
        async with asyncio.timeout(10):
            # The consumer reads nothing while the device delivers 10 frames more than fit.
            while audio.stats().frames_in < 14:
                await asyncio.sleep(0.05)
    finally:
        await audio.close()
    stats = audio.stats()
    # The callback kept running (frames_in grew past the queue) and counted every drop.
    assert stats.frames_in >= 14
    assert stats.dropped_in == stats.frames_in - 4
    kept = [await audio.read_frame() for _ in range(5)]
    assert all(f is not None for f in kept[:4]) and kept[4] is None


async def test_output_burst_drops_oldest_and_plays_the_newest_in_order(
        jack: JackDummy) -> None:
    audio = await _open_looped(queue_frames=4)
    received = []
    try:
        for k in range(1, 13):  # 12 frames at once into a 4-frame queue: returns at once
            audio.write_frame(_marker(k))
        for _ in range(12):
            frame = await audio.read_frame()
            assert frame is not None
            received.append(frame)
    finally:
        await audio.close()
    seen = _markers(received)
    stats = audio.stats()
    assert seen[-1] == 12 and seen == list(range(13 - len(seen), 13))
    assert stats.dropped_out == 12 - len(seen) and stats.dropped_out >= 7


async def test_device_in_wav_out(jack: JackDummy, tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    audio = open_audio(AudioSection(input_device="system", output="wav", output_wav=out))
    await audio.start()
    for k in range(1, 6):
        assert await audio.read_frame() is not None
        audio.write_frame(_marker(k))
    await audio.close()
    with wave.open(str(out)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert data.size == 5 * FRAME_SIZE
    assert np.allclose(data[::FRAME_SIZE] / 32767, [k / 256 for k in range(1, 6)], atol=1e-4)


def test_missing_device_lists_what_exists(jack: JackDummy, tmp_path: Path) -> None:
    with pytest.raises(DeviceError) as err:
        open_audio(AudioSection(input_device="no-such-card"))
    msg = err.value.message
    assert msg.startswith("audio.input_device: no input device matches 'no-such-card'")
    assert "'system'" in msg and "entropi devices" in msg
    wav = tmp_path / "in.wav"
    write_wav(wav, np.zeros(FRAME_SIZE, np.float32))
    with pytest.raises(DeviceError, match=r"audio\.output_device: no output device matches 99"):
        open_audio(AudioSection(input="wav", input_wav=wav, output_device=99))


def test_devices_command_lists_the_jack_device(jack: JackDummy) -> None:
    def entropi(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "entropi", *args], check=True,
                              capture_output=True, text=True, timeout=30).stdout

    devices = json.loads(entropi("devices", "--json"))["devices"]
    system = [d for d in devices if d["name"] == "system"]
    assert system and system[0]["max_input_channels"] >= 1
    assert system[0]["hostapi"].startswith("JACK")
    text = entropi("devices")
    assert "system" in text and "default input" in text


def test_device_at_48k_is_resampled_at_the_edge(jack: JackDummy, tmp_path: Path) -> None:
    """A second, 48 kHz JACK server (its own name) in a child process: see the script."""
    env = os.environ | {"JACK_DEFAULT_SERVER": f"entropi48_{os.getpid()}"}
    script = Path(__file__).with_name("loopback_native_rate.py")
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                         text=True, timeout=50, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["device_rate"] == 48_000
    assert result["stats"]["xruns"] == 0 and result["stats"]["dropped_in"] == 0
    assert result["markers"] == list(range(1, 31))
