"""Echo cancellation in a simulated room: the agent's voice reaches the microphone through a
room response; with cancellation no user speech is detected while only the agent talks, and
a user talking over the agent is still heard."""

from __future__ import annotations

import numpy as np
import pytest

from entropi.audio.echo import EchoCanceller
from entropi.audio.signals import at_level, espeak, pink_noise
from entropi.config import AudioSection
from entropi.conversation.transcript import WindowTranscript
from entropi.core.constants import FRAME_SIZE, SAMPLE_RATE
from entropi.hearing.vad import SileroVad


@pytest.fixture(scope="module")
def room() -> dict[str, np.ndarray]:
    return make_room()


def make_room() -> dict[str, np.ndarray]:
    agent = espeak("Hello, I am Ada. How was your day? Tell me about the garden and the cat.")
    agent = at_level(np.concatenate([agent, np.zeros(SAMPLE_RATE // 2, np.float32)]), -20.0)
    rng = np.random.default_rng(3)
    t = np.arange(int(0.2 * SAMPLE_RATE))
    rir = np.zeros(720 + t.size)  # 30 ms speaker→mic delay, 40 ms decay (a small room)
    rir[720:] = rng.standard_normal(t.size) * np.exp(-t / (0.04 * SAMPLE_RATE))
    rir *= 0.5 / np.sqrt(np.sum(rir**2))  # the echo arrives 6 dB below the played level
    echo = np.convolve(agent, rir)[: agent.size].astype(np.float32)
    user = at_level(espeak("My cat is called Pepper."), -26.0)
    return {"agent": agent, "echo": echo + pink_noise(agent.size, -65.0, seed=2),
            "user": user, "rir": rir.astype(np.float32)}


async def _speech_frames(mic: np.ndarray, played: np.ndarray, cancel: bool) -> list[bool]:
    aec = EchoCanceller(SAMPLE_RATE) if cancel else None
    vad = SileroVad(0.5)
    out = []
    try:
        for k in range(0, mic.size - FRAME_SIZE + 1, FRAME_SIZE):
            frame = mic[k:k + FRAME_SIZE]
            if aec is not None:
                frame = aec.process(frame, played[k:k + FRAME_SIZE])
            out.append(await vad.step(frame))
    finally:
        vad.close()
    return out


async def test_agent_echo_is_not_user_speech(room):
    raw = await _speech_frames(room["echo"], room["agent"], cancel=False)
    assert sum(raw) > 20  # without cancellation the agent's echo is "the user" most of the time
    cleaned = await _speech_frames(room["echo"], room["agent"], cancel=True)
    assert sum(cleaned) == 0


async def test_user_over_the_agent_is_still_heard(room):
    mic = room["echo"].copy()
    at = 3 * SAMPLE_RATE  # the user starts 3 s in, while the agent still talks
    mic[at:at + room["user"].size] += room["user"][: mic.size - at]
    frames = await _speech_frames(mic, room["agent"], cancel=True)
    first = at // FRAME_SIZE
    assert sum(frames[:first]) == 0
    # Double talk: the canceller's suppressor thins the user's speech while the agent talks,
    # but enough is left for a user turn (>= 0.3 s of speech frames).
    assert sum(frames[first:]) >= 4


def test_echo_cancellation_defaults_follow_the_input():
    assert AudioSection(input="device").cancels_echo
    assert not AudioSection(input="wav", input_wav="x.wav", output="device").cancels_echo
    assert AudioSection(input="wav", input_wav="x.wav", echo_cancellation="on").cancels_echo


async def test_audio_io_duplex_path_cancels_the_speaker(room):
    """AudioIO's duplex callback, driven as PortAudio's thread drives it, with the room
    applied to what the callback really played: no user turn is found in the frames read
    back while only the agent talks (a stray 80 ms frame while the canceller converges is
    shorter than a turn)."""
    from entropi.transports.local import AudioIO

    io = AudioIO(AudioSection(input="device", output="device", queue_frames=256),
                 input_device=0, output_device=0)
    io.enable_echo_cancellation(SAMPLE_RATE)
    rir = room["rir"]
    agent = room["agent"]
    played = np.zeros(rir.size + agent.size, np.float32)
    vad = SileroVad(0.5)
    heard: list[int] = []
    try:
        for k in range(0, agent.size - FRAME_SIZE + 1, FRAME_SIZE):
            io.write_frame(agent[k:k + FRAME_SIZE])
            start = rir.size + k
            # The mic block holds the echo of everything played before it (a causal room;
            # the block being played now is still zeros in ``played``).
            mic = np.convolve(played[start - rir.size + 1:start + FRAME_SIZE], rir, "valid")
            out = np.zeros((FRAME_SIZE, 1), np.float32)
            io._duplex_callback(mic.astype(np.float32)[:, None], out, FRAME_SIZE, None, None)
            played[start:start + FRAME_SIZE] = out[:, 0]
        io._echo.close()
        frames = 0
        turns = WindowTranscript()
        while (item := io._in_q.get()) is not None:
            active = await vad.step(item[0])
            heard += [frames] if active else []
            turns.add(None, user_pcm=item[0], t=0.0, user_active=active)
            frames += 1
    finally:
        vad.close()
    assert frames == agent.size // FRAME_SIZE
    assert np.abs(played).max() > 0.05  # the agent really played
    assert len(heard) <= 3, heard
    assert turns.close() == [] and turns.utterances() == []
