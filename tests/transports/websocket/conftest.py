"""Start the real daemon as a websocket server (tiny model, embedded LLM) and talk to it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import ROOT, DaemonRun, notify_socket  # noqa: F401 (fixture)

FAKE_SD = Path(__file__).parent / "fake_sd"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("entropi-cache")


class ServerRun(DaemonRun):
    """A daemon serving callers; ``port`` once it waits for the first one."""

    port = 0
    proc: subprocess.Popen[str] | None = None

    def ws_config(self, **overrides: Any) -> Path:
        return self.config(**{
            "audio.input": "websocket", "audio.output": "websocket", "audio.queue_frames": 64,
            # The tiny model starts to "speak" some 8.5 s after priming: windows that long.
            "server.port": 0, "window.min_seconds": 9.0, "window.max_seconds": 12.0,
            "conversation.transcript_file": str(self.dir / "transcript.txt"), **overrides})

    def serve(self, env: dict[str, str] | None = None) -> int:
        self.proc = self.start(env=env)
        st = self.wait_status(lambda s: s.get("state") == "waiting", timeout=180, proc=self.proc)
        self.port = int(st["port"])
        return self.port

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


def wait_for(pred, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def server(tmp_path, model_cache) -> Iterator[ServerRun]:
    run = ServerRun(tmp_path, model_cache)
    yield run
    if run.proc is not None and run.proc.poll() is None:
        run.proc.kill()
        run.proc.wait()


def moshi_client(port: int, workdir: Path, seconds: float) -> subprocess.Popen[bytes]:
    """The unmodified ``python -m moshi.client`` with the fake sounddevice first on the path;
    its microphone starts when ``workdir/start`` appears."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FAKE_SD), str(ROOT)]),
           "FAKE_SD_WAV": str(ROOT / "voices" / "demo_input.wav"),
           "FAKE_SD_SECONDS": str(seconds), "FAKE_SD_START": str(workdir / "start"),
           "FAKE_SD_OUT": str(workdir / "client.json")}
    with open(workdir / "client.out", "wb") as out, open(workdir / "client.err", "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "moshi.client", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
