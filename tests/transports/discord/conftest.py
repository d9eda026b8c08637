"""Discord transport fixtures: espeak-ng speech, a transport on a simulated clock."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from entropi.audio.wav import read_wav
from entropi.config import DiscordSection
from entropi.memory.consent import ConsentStore
from entropi.transports.discord.consent import ConsentGate
from entropi.transports.discord.simulate import SimClock, VoiceThread
from entropi.transports.discord.transport import DiscordTransport
from tests.service.conftest import daemon, model_cache  # noqa: F401 (the daemon fixtures)


def espeak(text: str, out: Path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "170", "-w", str(out), text], check=True)
    return read_wav(out)  # 24 kHz mono float32


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> dict[str, np.ndarray]:
    d = tmp_path_factory.mktemp("discord-speech")
    return {"ann": espeak("Hello, I am Ann and I like walking in the hills.", d / "ann.wav"),
            "bob": espeak("Bob here. The weather was awful yesterday.", d / "bob.wav")}


class NoNetwork:
    """The transport's network side when only the audio plumbing is under test."""

    async def start(self, sink, source) -> None:
        self.sink, self.source = sink, source

    async def close(self) -> None:
        pass

    def status(self) -> dict:
        return {"channel": "sim", "connected": True, "present": [], "rejoins": 0}


@pytest.fixture
def sim(tmp_path):
    clock = SimClock()
    voice = VoiceThread()
    store = ConsentStore(tmp_path / "consent.json", default_remember=False)
    transport = DiscordTransport(DiscordSection(guild_id=1, channel_id=2), NoNetwork(),
                                 ConsentGate(store), clock=clock)
    yield clock, voice, transport
    voice.close()
