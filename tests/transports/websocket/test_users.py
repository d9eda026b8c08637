"""One memory per person through the real daemon (tiny model, embedded LLM): two callers
with their own tokens, one after the other; each one's conversation lands in their own
folder, the owner's files stay untouched, and a user's token does not open the live view."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from entropi.memory.journal import Journal
from tests.service.conftest import log_events
from tests.transports.websocket.conftest import ServerRun
from tests.transports.websocket.test_websocket import ogg_pages

pytestmark = pytest.mark.slow  # 35-45 s on 2 cores: a daemon and two 5 s calls

TOKENS = {"ALICE_TOKEN": "alice-5ecret-t0ken", "BOB_TOKEN": "bob-5ecret-t0ken",
          "ENTROPI_SERVER_TOKEN": "owner-5ecret-t0ken"}


async def http_status(url: str, **headers: str) -> int:
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers) as r:
        return r.status


async def call(url: str, seconds: float, **headers: str) -> list[int]:
    """A caller: wait for the handshake, talk ``seconds`` at real-time pace, hang up."""
    kinds: list[int] = []
    async with aiohttp.ClientSession() as s, s.ws_connect(url, headers=headers) as ws:
        first = await ws.receive(timeout=120)
        assert first.data == b"\x00", first.data

        async def reader() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    kinds.append(msg.data[0])
        task = asyncio.create_task(reader())
        for page in ogg_pages(seconds):
            await ws.send_bytes(page)
            await asyncio.sleep(0.08)
        for _ in range(300):  # replies trail by the model's time
            if kinds.count(1) >= int(seconds / 0.08) - 2:
                break
            await asyncio.sleep(0.1)
        await ws.close()
        task.cancel()
    return kinds


def test_each_caller_gets_their_own_memory(server: ServerRun):
    server.ws_config(**{
        "server.tokens": {"ALICE_TOKEN": "alice", "BOB_TOKEN": "bob"},
        # A window ends (forced) within each call: transcript, ledger and journal per user.
        "window.min_seconds": 1.0, "window.max_seconds": 2.0, "window.grace_seconds": 1.0})
    port = server.serve(env=TOKENS)
    base = f"http://127.0.0.1:{port}/api"
    ws = f"ws://127.0.0.1:{port}/api/chat"

    # The live view shows every call: the owner's token only.
    assert asyncio.run(http_status(f"{base}/status?token={TOKENS['BOB_TOKEN']}")) == 403
    assert asyncio.run(http_status(f"{base}/status?token={TOKENS['ENTROPI_SERVER_TOKEN']}")) \
        == 200
    assert asyncio.run(http_status(f"{base}/status")) == 401
    assert asyncio.run(http_status(f"{base}/events?token=alice")) == 401

    asyncio.run(call(f"{ws}?token={TOKENS['ALICE_TOKEN']}", 5.0))
    server.wait_status(lambda s: s.get("state") == "waiting" and s.get("conversations") == 1,
                       proc=server.proc)
    asyncio.run(call(ws, 5.0, Authorization=f"Bearer {TOKENS['BOB_TOKEN']}"))
    server.wait_status(lambda s: s.get("state") == "waiting" and s.get("conversations") == 2,
                       proc=server.proc)
    assert server.stop() == 0

    users = server.dir / "users"  # default: beside the journal (<dir>/journal)
    for user in ("alice", "bob"):
        home = users / user
        entries = Journal(home / "journal").read_all()
        assert sum("Session ended after" in e.summary for e in entries) == 1, (user, entries)
        text = (home / "transcript.txt").read_text()  # the call's session heading, window 1
        assert text.startswith("# session ") and "\n## window 1 " in text
        assert json.loads((home / "ledger.json").read_text())["window"] >= 1
        assert (home / "persona_state.json").exists()
    # The owner's (single-user) files were never written.
    assert not (server.dir / "journal").exists()
    assert not (server.dir / "transcript.txt").exists()
    assert not (server.dir / "persona_state.json").exists()
    events = log_events(server.output())
    started = [e.get("user") for e in events if e.get("event") == "call_started"]
    assert started == ["alice", "bob"]
    log = server.output()
    assert all(token not in log for token in TOKENS.values())  # ids in the log, never tokens
