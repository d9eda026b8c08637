"""Run the real daemon as a subprocess on the tiny model with WAV input."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One tiny-model cache for every daemon run in the session (generated on first use)."""
    return tmp_path_factory.mktemp("entropi-cache")


class DaemonRun:
    def __init__(self, workdir: Path, cache: Path) -> None:
        self.dir = workdir
        self.cache = cache

    def config(self, **overrides: Any) -> Path:
        """config.demo.yaml with absolute paths into this test's directory, plus overrides."""
        data = yaml.safe_load((ROOT / "config.demo.yaml").read_text())
        data["model"]["cache_dir"] = str(self.cache)
        data["voice"]["prompt_dir"] = str(ROOT / "voices")
        data["voice"]["thinking_clips"] = str(ROOT / "voices" / "thinking")
        data["audio"]["input_wav"] = str(ROOT / "voices" / "demo_input.wav")
        data["audio"]["output_wav"] = str(self.dir / "out.wav")
        data["memory"]["journal_dir"] = str(self.dir / "journal")
        data["memory"]["profile_path"] = str(self.dir / "persona_state.json")
        data["service"]["status_file"] = str(self.dir / "status.json")
        for dotted, value in overrides.items():
            section, key = dotted.split(".", 1)
            node = data.setdefault(section, {})
            while "." in key:
                head, key = key.split(".", 1)
                node = node.setdefault(head, {})
            node[key] = value
        path = self.dir / "config.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        # Output goes to a file, not a pipe: a long run's logs would fill a pipe nobody reads
        # while the test polls the status file, and the daemon would block writing them.
        with open(self.dir / "daemon.log", "w") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "entropi", "run", "--config", str(self.dir / "config.yaml"),
                 "--summary-json", str(self.dir / "summary.json"), "--log-format", "json", *args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                env={**os.environ, **(env or {})}, cwd=self.dir)

    def output(self) -> str:
        return (self.dir / "daemon.log").read_text()

    def run(self, *args: str, timeout: float = 240) -> tuple[int, str]:
        proc = self.start(*args)
        proc.wait(timeout=timeout)
        return proc.returncode, self.output()

    def summary(self) -> dict[str, Any]:
        return json.loads((self.dir / "summary.json").read_text())

    def status(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.dir / "status.json").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def wait_status(self, pred, timeout: float = 120, proc=None) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = self.status()
            if st is not None and pred(st):
                return st
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"daemon exited early ({proc.returncode}): {self.output()}")
            time.sleep(0.1)
        raise AssertionError(f"status never matched; last: {self.status()}")


@pytest.fixture
def daemon(tmp_path, model_cache) -> DaemonRun:
    return DaemonRun(tmp_path, model_cache)


def log_events(text: str) -> list[dict[str, Any]]:
    events = []
    for line in text.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


class FakeLLM:
    """A local OpenAI-protocol server: answers at once with a fixed prompt, or hangs."""

    def __init__(self, mode: str = "answer") -> None:
        self.mode = mode
        self.requests = 0
        self.bodies: list[str] = []  # every request body, for tests that check what was sent
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep test output clean
                pass

            def do_GET(self):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"status":"ok"}')

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                outer.bodies.append(self.rfile.read(length).decode())
                outer.requests += 1
                if outer.mode == "hang":
                    time.sleep(30)
                    return
                text = f"You are Ada, a calm companion. Window {outer.requests} was pleasant."
                body = json.dumps({"id": "x", "object": "chat.completion", "model": "fake",
                                   "choices": [{"index": 0, "finish_reason": "stop",
                                                "message": {"role": "assistant",
                                                            "content": text}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    server = FakeLLM()
    yield server
    server.close()


@pytest.fixture
def hanging_llm() -> Iterator[FakeLLM]:
    server = FakeLLM("hang")
    yield server
    server.close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def notify_socket(tmp_path) -> Iterator[tuple[str, list[str]]]:
    """A real AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    messages: list[str] = []
    stop = threading.Event()

    def pump() -> None:
        while not stop.is_set():
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    yield path, messages
    stop.set()
    t.join(1)
    sock.close()
