"""Hub failures through the real CLI and huggingface_hub, against a local stand-in for the hub
(the network edge is the only fake): a gated repo without a token, and a missing repo."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


class _Hub(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        gated = self.path.startswith("/nvidia/")
        self.send_response(401 if gated else 404)
        self.send_header("X-Error-Code", "GatedRepo" if gated else "RepoNotFound")
        self.send_header("X-Error-Message", "Access to this model is restricted.")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def hub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _cache_voice(hub: str, config: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_OFFLINE")}
    env |= {"HF_ENDPOINT": hub, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    return subprocess.run([sys.executable, "-m", "entropi", "cache-voice", "x.wav",
                           "-o", str(tmp_path), "--config", str(config)],
                          capture_output=True, text=True, timeout=120, env=env)


def test_gated_repo_without_token(hub: str, tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(f"model:\n  source: hub\n  cache_dir: {tmp_path}\n")
    run = _cache_voice(hub, config, tmp_path)
    assert run.returncode == 3, run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        "model error: nvidia/personaplex-7b-v1/model.safetensors: the repository is gated; "
        "export HF_TOKEN=<a token that accepted the licence>")


def test_unknown_repo(hub: str, tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(f"model:\n  source: hub\n  hf_repo: someone/nothing\n"
                      f"  cache_dir: {tmp_path}\n")
    run = _cache_voice(hub, config, tmp_path)
    assert run.returncode == 3, run.stderr
    assert "model error: someone/nothing: repository not found" in run.stderr
