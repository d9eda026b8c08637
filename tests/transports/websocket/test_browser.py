"""entropi's own web page in headless Chromium against the real daemon, with a WAV as the
microphone; plus the token: 401 without it, never in the log."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request

import pytest

from tests.service.conftest import ROOT
from tests.transports.websocket.cdp import Browser
from tests.transports.websocket.conftest import ServerRun, wait_for

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "out" / "test-artifacts"
VIEW = """JSON.stringify({state: document.getElementById('state').textContent,
  window: document.getElementById('window').textContent,
  call: document.getElementById('call').textContent,
  words: document.getElementById('words').innerText,
  agent: [...document.querySelectorAll('#words p:not(.user)')]
    .map((p) => p.lastChild.textContent).join(''),  // the pieces, in order
  user: [...document.querySelectorAll('#words p.user')].map((p) => p.textContent),
  events: document.getElementById('events').innerText,
  prompt: document.getElementById('prompt').textContent})"""


def http_status(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                    timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_page_talks_and_shows_live_view(server: ServerRun, notify_socket):
    token = "tok-" + secrets.token_hex(12)
    server.ws_config(**{"service.watchdog": True})  # the demo profile turns it off
    sock, messages = notify_socket
    port = server.serve(env={"ENTROPI_SERVER_TOKEN": token, "NOTIFY_SOCKET": sock,
                             "WATCHDOG_USEC": "1000000"})
    # Nobody has called yet and the watchdog is still fed.
    pings = messages.count("WATCHDOG=1")
    wait_for(lambda: messages.count("WATCHDOG=1") >= pings + 2, 30, "watchdog pings")
    base = f"http://127.0.0.1:{port}"
    assert http_status(f"{base}/api/status")[0] == 401
    assert http_status(f"{base}/api/status?token=wrong")[0] == 401
    code, body = http_status(f"{base}/api/status", {"Authorization": f"Bearer {token}"})
    assert code == 200 and json.loads(body)["state"] == "waiting"

    browser = Browser(f"{base}/?token={token}&autostart=1", server.dir,
                      ROOT / "voices" / "demo_input.wav")
    try:
        view: dict = {}
        end = time.monotonic() + 150
        while time.monotonic() < end:
            view = json.loads(browser.evaluate(VIEW) or "{}")
            if "window 1 ended" in view.get("events", "") and "compaction" in view["events"] \
                    and view.get("words", "").strip() and view.get("state") == "live":
                break
            assert server.proc.poll() is None, server.output()
            time.sleep(1.0)
        browser.screenshot(ARTIFACTS / "browser-live-view.png")
        assert view.get("call") == "connected", view
        assert "window 1 ended:" in view["events"], view
        assert "compaction" in view["events"], view
        assert view["words"].strip(), view
        assert view["prompt"].startswith("You are Ada"), view
    finally:
        browser.close()
    status = server.status() or {}
    assert status.get("conversation") == 1 and status.get("window", 0) >= 2
    assert server.stop() == 0
    out = server.output()
    assert token not in out and "unauthorized" in out
    # The words the page showed are the agent's words the daemon wrote down.
    transcript = (server.dir / "transcript.txt").read_text()
    agent = " ".join(line[len("agent: "):] for line in transcript.splitlines()
                     if line.startswith("agent: "))
    first = " ".join(agent.split()[:3])
    assert first in " ".join(view["agent"].split()), (agent, view["agent"])
    # The user's turns are shown beside them (the demo has no recogniser: markers).
    assert view["user"] and all(u.startswith("you: [spoke ") for u in view["user"]), view
