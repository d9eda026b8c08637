"""The real daemon with ``runtime.max_conversations: 3``: three websocket callers at once with
different tokens, voices and personas, the fourth gets busy, a caller hanging up mid-window
frees its slot for the next one; every conversation is flushed to its own person's journal."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import aiohttp
import pytest

from entropi.memory.journal import Journal
from tests.service.conftest import ROOT, log_events
from tests.transports.websocket.conftest import ServerRun
from tests.transports.websocket.test_websocket import ogg_pages, refused

pytestmark = pytest.mark.slow  # 25-40 s on 2 loaded cores (daemon, llama.cpp, 4 calls)

TOKENS = {"ANN_TOKEN": "ann-5ecret-t0ken", "BO_TOKEN": "bo-5ecret-t0ken",
          "CY_TOKEN": "cy-5ecret-t0ken", "ENTROPI_SERVER_TOKEN": "owner-5ecret-t0ken"}


async def converse(url: str, seconds: float, out: dict, live: asyncio.Event) -> None:
    """Handshake, then ``seconds`` of speech at real-time pace; count the audio back."""
    out.update(kinds=[], sent=0)
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        out["first"] = (await ws.receive(timeout=120)).data
        live.set()

        async def reader() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    out["kinds"].append(msg.data[0])
        task = asyncio.create_task(reader())
        for page in ogg_pages(seconds):
            await ws.send_bytes(page)
            out["sent"] += 1
            await asyncio.sleep(0.08)  # the caller is the clock
        for _ in range(300):  # replies trail by the model's time on a loaded CPU
            if out["kinds"].count(1) >= out["sent"] - 1:
                break
            await asyncio.sleep(0.1)
        out["back"] = out["kinds"].count(1)
        await ws.close()  # hang up (mid-window: windows are >= 9 s)
        task.cancel()


def test_three_callers_at_once_fourth_busy_hang_up_frees_a_slot(server: ServerRun, tmp_path):
    voices = tmp_path / "voices"
    voices.mkdir()
    shutil.copy(ROOT / "voices" / "demo_voice.wav", voices / "demo_voice.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(voices / "other.wav"),
                    "Hello, I am the other voice."], check=True)
    server.ws_config(**{"runtime.max_conversations": 3, "voice.prompt_dir": str(voices),
                        "server.tokens": {"ANN_TOKEN": "ann", "BO_TOKEN": "bo",
                                          "CY_TOKEN": "cy"}})
    port = server.serve(env=TOKENS)
    url = f"ws://127.0.0.1:{port}/api/chat?token="
    ann = url + TOKENS["ANN_TOKEN"]
    asks = [ann, f"{url}{TOKENS['BO_TOKEN']}&voice_prompt=other.wav&text_prompt=You%20are%20Bo.",
            f"{url}{TOKENS['CY_TOKEN']}&voice_prompt=demo_voice.wav&text_prompt=You%20are%20Cy."]

    async def main() -> tuple[list[dict], list[bytes], dict]:
        outs: list[dict] = [{}, {}, {}]
        lives = [asyncio.Event() for _ in asks]
        seconds = (1.6, 3.2, 3.2)  # the first caller hangs up early
        calls = [asyncio.create_task(converse(a, s, o, e))
                 for a, s, o, e in zip(asks, seconds, outs, lives, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in lives)), 180)
        busy = await refused(ann)  # three calls live: the fourth is refused
        await calls[0]
        # The first caller's slot is freed once its conversation is flushed.
        await asyncio.to_thread(server.wait_status, lambda s: s.get("calls") == 2
                                and s.get("conversations") == 3, 120, server.proc)
        fourth: dict = {}
        await converse(ann, 1.6, fourth, asyncio.Event())  # Ann calls again
        await asyncio.gather(*calls[1:])
        return outs, busy, fourth

    outs, busy, fourth = asyncio.run(main())
    assert busy[0][0] == 5 and b"busy: all 3 conversations are in progress" in busy[0], busy
    for out in [*outs, fourth]:
        assert out["first"] == b"\x00"  # handshake before any audio
        assert abs(out["back"] - out["sent"]) <= 1, (out["back"], out["sent"])
    server.wait_status(lambda s: s.get("state") == "waiting" and s.get("conversations") == 4,
                       proc=server.proc)
    assert server.stop() == 0
    events = log_events(server.output())
    slots = [e for e in events if e.get("event") == "call_slot"]
    assert sorted(e["slot"] for e in slots[:3]) == [0, 1, 2]
    assert slots[3]["slot"] == 0  # the hung-up caller's slot, reused
    assert not [e for e in events if e.get("event") in ("call_crashed", "tick_failed")]
    assert server.summary()["conversations"] == 4
    # Each conversation was flushed into its own person's journal, and only there.
    for user, sessions in (("ann", 2), ("bo", 1), ("cy", 1)):
        entries = Journal(server.dir / "users" / user / "journal").read_all()
        assert sum("Session ended after" in e.summary for e in entries) == sessions, user
    assert not (server.dir / "journal").exists()  # the owner's files: untouched
    assert [e.get("user") for e in events if e.get("event") == "call_started"][3] == "ann"
