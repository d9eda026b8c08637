"""Audio test fixtures: a real JACK dummy server, speech rendered by espeak-ng."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from entropi.transports.jack import JackDummy


@pytest.fixture(scope="session")
def jack() -> Iterator[JackDummy]:
    """A JACK server on the dummy backend (24 kHz, 1920-sample periods) for the session."""
    if not JackDummy.installed():
        pytest.skip("jackd is not installed (apt-get install jackd2)")
    server = JackDummy()
    server.start()  # raises if jackd cannot start: that is a failure, not a skip
    yield server
    server.stop()


def _espeak(text: str, out: Path) -> Path:
    """Render ``text`` with espeak-ng and trim its edge silence with sox (22.05 kHz, as made)."""
    raw = out.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), str(out), "silence", "1", "0.01", "1%", "reverse",
                    "silence", "1", "0.01", "1%", "reverse"], check=True)
    return out


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two espeak-ng utterances (native 22.05 kHz): real speech for the pause detector."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is needed for the audio tests (scripts/test.sh installs it)")
    folder = tmp_path_factory.mktemp("speech")
    _espeak("Hello Ada, I would like to tell you about my trip to the mountains next week.",
            folder / "first.wav")
    _espeak("My friend Maria is coming with me.", folder / "second.wav")
    return folder
