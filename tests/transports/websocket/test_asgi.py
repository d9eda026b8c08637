"""The ASGI app the cluster's replicas serve, driven with ASGI messages (no server, no Ray):
the same CallLine as the aiohttp server, its refusals, the token, the page."""

from __future__ import annotations

import asyncio

import pytest

from entropi.config import parse_config
from entropi.transports.websocket.asgi import AsgiApp
from entropi.transports.websocket.feed import LiveFeed
from entropi.transports.websocket.line import CallLine
from entropi.transports.websocket.protocol import Access
from tests.service.conftest import ROOT

CFG = parse_config(f"voice:\n  prompt_dir: {ROOT / 'voices'}\n  prompt_file: demo_voice.wav\n"
                   "audio:\n  input: websocket\n  output: websocket\n")


class Peer:
    """The proxy's side of one ASGI connection."""

    def __init__(self, *incoming: dict) -> None:
        self.inbox: asyncio.Queue[dict] = asyncio.Queue()
        for msg in incoming:
            self.inbox.put_nowait(msg)
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        return await self.inbox.get()

    async def send(self, msg: dict) -> None:
        self.sent.append(msg)


def ws_scope(query: str = "", headers: list | None = None, path: str = "/api/chat") -> dict:
    return {"type": "websocket", "path": path, "query_string": query.encode(),
            "headers": headers or [], "client": ("10.0.0.7", 5555)}


def app(line: CallLine) -> AsgiApp:
    return AsgiApp(line, lambda: {"state": "waiting"},
                   Access("s3cret", {"ada-token": "ada"}))


async def test_busy_line_refuses_with_kind_5_and_closes():
    line = CallLine(CFG, LiveFeed())
    line.in_use = 1  # the one slot is taken
    peer = Peer({"type": "websocket.connect"})
    await app(line)(ws_scope("token=s3cret"), peer.receive, peer.send)
    kinds = [m["type"] for m in peer.sent]
    assert kinds == ["websocket.accept", "websocket.send", "websocket.close"]
    assert peer.sent[1]["bytes"][0] == 5 and b"busy" in peer.sent[1]["bytes"]
    assert line.refused == 1


async def test_traversal_refused_and_token_needed_header_any_case():
    line = CallLine(CFG, LiveFeed())
    peer = Peer({"type": "websocket.connect"})
    await app(line)(ws_scope("voice_prompt=../../etc/passwd",
                             headers=[(b"X-Entropi-Token", b"s3cret")]), peer.receive, peer.send)
    assert peer.sent[1]["bytes"][0] == 5 and b"voices folder" in peer.sent[1]["bytes"]
    peer = Peer({"type": "websocket.connect"})
    await app(line)(ws_scope("token=wrong"), peer.receive, peer.send)
    assert peer.sent == [{"type": "websocket.close", "code": 4401}]  # never accepted


async def test_a_call_reaches_the_loop_and_is_released_after_the_flush():
    """An admitted call is queued for the loop with its checked request; text frames and
    oversized messages are the same problems as on aiohttp."""
    line = CallLine(CFG, LiveFeed())
    peer = Peer({"type": "websocket.connect"},
                {"type": "websocket.receive", "text": "hello"},
                {"type": "websocket.receive", "bytes": b"\x01" + bytes(2 << 20)})
    served = asyncio.create_task(app(line)(ws_scope("token=ada-token&voice_prompt=demo_input.wav"),
                                           peer.receive, peer.send))
    call = await asyncio.wait_for(line.next_call(), 10)
    assert call.request.voice.name == "demo_input.wav" and line.in_use == 1
    assert call.request.user_id == "ada"  # the token named her: her own memory folder
    assert call.cfg.memory.journal_dir.parent.name == "ada"
    await call.close()  # what the loop does once the conversation is flushed
    await asyncio.wait_for(served, 10)
    assert call.counts == {"ws_text_message": 1, "ws_message_too_big": 1}
    line.release(call)
    assert line.in_use == 0 and line.active == [] and line.answered == 1


@pytest.mark.parametrize(("path", "status", "needle"),
                         [("/", 200, b"<html"), ("/static/app.js", 200, b"function"),
                          ("/static/../server.py", 404, b"404"), ("/api/status", 401, b"401"),
                          ("/api/status?token=ada-token", 403, b"owner"),
                          ("/api/status?token=s3cret", 200, b"waiting")])
async def test_page_static_and_status(path, status, needle):
    peer = Peer({"type": "http.request", "body": b""})
    path, _, query = path.partition("?")
    await app(CallLine(CFG, LiveFeed()))({"type": "http", "path": path,
                                          "query_string": query.encode(), "headers": []},
                                         peer.receive, peer.send)
    assert peer.sent[0]["status"] == status
    assert needle in peer.sent[1]["body"].lower()
