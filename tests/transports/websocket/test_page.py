"""entropi's page in headless Chromium against the real ChatServer (no model needed): the
voice picker from /api/voices, the user's words beside the agent's, an empty view for each
call, the WebCodecs feature check, voice_prompt passed on to the call."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from entropi.config import parse_config
from entropi.transports.websocket.feed import LiveFeed
from entropi.transports.websocket.server import ChatServer
from tests.service.conftest import ROOT
from tests.transports.websocket.cdp import Browser
from tests.transports.websocket.conftest import wait_for
from tests.transports.websocket.test_voice_list import _folders


class Served:
    """A ChatServer on its own event loop in a thread (the test drives a browser meanwhile)."""

    def __init__(self, cfg, voice_dirs) -> None:
        self.feed = LiveFeed()
        self.loop = asyncio.new_event_loop()
        self.server = ChatServer(cfg, self.feed, status=lambda: {"state": "waiting"},
                                 voice_dirs=voice_dirs)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(30)

    def publish(self, kind: str, **data: Any) -> None:
        self.loop.call_soon_threadsafe(lambda: self.feed.publish(kind, **data))

    def new_call(self, **data: Any) -> None:
        self.loop.call_soon_threadsafe(lambda: self.feed.new_call(**data))

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def served(tmp_path) -> Iterator[Served]:
    mine, hub = _folders(tmp_path)
    cfg = parse_config(f"voice:\n  prompt_dir: {mine}\n  prompt_file: mine.wav\n"
                       "audio:\n  input: websocket\n  output: websocket\n"
                       "server:\n  port: 0\n")
    s = Served(cfg, (mine, hub))
    yield s
    s.close()


def test_voices_endpoint_lists_own_voices_then_presets(served: Served):
    with urllib.request.urlopen(f"{served.server.url}api/voices", timeout=10) as resp:
        data = json.loads(resp.read())
    assert data["default"] == "mine.wav"
    voices = {v["name"]: v["preset"] for v in data["voices"]}
    assert len(voices) == 19 and voices["mine.wav"] is False
    assert voices["NATF0.pt"] is False and voices["NATM1.pt"] is True  # the user's NATF0 wins


def _js(browser: Browser, expr: str) -> Any:
    return browser.evaluate(expr)


def test_page_picker_user_words_fresh_view_and_feature_check(served: Served, tmp_path):
    browser = Browser(f"{served.server.url}?voice_prompt=NATM1.pt", tmp_path,
                      ROOT / "voices" / "demo_input.wav")
    try:
        wait_for(lambda: (_js(browser, "document.getElementById('voice').options.length")
                          or 0) == 20, 60, "the voice picker filled from /api/voices")
        assert _js(browser, "document.getElementById('voice').value") == "NATM1.pt"
        assert "voice_prompt=NATM1.pt" in _js(browser, "chatQuery()")
        assert _js(browser, "document.getElementById('support').hidden") is True

        def words() -> str:
            return _js(browser, "document.getElementById('words').innerText") or ""

        served.publish("text", text="Hello, I am Ada.")
        served.publish("user_text", text="is it raining", seconds=1.2, name=None)
        served.publish("user_text", text="", seconds=0.8, name=None)  # no recogniser: marker
        wait_for(lambda: "[spoke 0.8 s]" in words(), 30, "the user's turns on the page")
        lines = [line for line in words().splitlines() if line.strip()]
        assert lines[-3].endswith("Hello, I am Ada.")
        assert lines[-2:] == ["you: is it raining", "you: [spoke 0.8 s]"]
        served.new_call(conversation=2, voice="NATF0.pt")
        served.publish("text", text="Second caller.")
        wait_for(lambda: "Second caller." in words(), 30, "the second call's words")
        assert "Ada" not in words() and "raining" not in words()

        # A browser without WebCodecs (Safari before 26) is told so; Talk is disabled.
        assert _js(browser, "delete window.AudioEncoder; delete window.AudioDecoder; "
                            "checkSupport()") is False
        msg = _js(browser, "document.getElementById('support').textContent")
        assert "lacks AudioEncoder, AudioDecoder" in msg
        assert _js(browser, "document.getElementById('talk').disabled") is True
    finally:
        browser.close()


def test_every_callers_token_may_read_the_voice_list(tmp_path, monkeypatch):
    mine, hub = _folders(tmp_path)
    monkeypatch.setenv("ALICE_TOKEN", "alice-" + "x" * 24)
    monkeypatch.delenv("ENTROPI_SERVER_TOKEN", raising=False)
    cfg = parse_config(f"voice:\n  prompt_dir: {mine}\n  prompt_file: mine.wav\n"
                       "audio:\n  input: websocket\n  output: websocket\n"
                       "server:\n  port: 0\n  tokens:\n    ALICE_TOKEN: alice\n")
    s = Served(cfg, (mine, hub))
    try:
        def get(path: str) -> int:
            try:
                with urllib.request.urlopen(f"{s.server.url}{path}", timeout=10) as resp:
                    return resp.status
            except urllib.error.HTTPError as exc:
                return exc.code

        token = "token=alice-" + "x" * 24
        assert get(f"api/voices?{token}") == 200  # a caller picks from it
        assert get(f"api/status?{token}") == 403  # the live view stays the owner's
        assert get("api/voices") == 401
    finally:
        s.close()
