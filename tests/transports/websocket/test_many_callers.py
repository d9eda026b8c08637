"""The real daemon with ``runtime.max_conversations: 3``: three websocket callers at once with
different voices and personas, the fourth gets busy, a caller hanging up mid-window frees its
slot for the next one; every conversation is flushed to the journal."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import aiohttp
import pytest

from tests.service.conftest import ROOT, log_events
from tests.transports.websocket.conftest import ServerRun
from tests.transports.websocket.test_websocket import ogg_pages, refused

pytestmark = pytest.mark.slow  # ~60 s on 2 loaded cores (daemon, llama.cpp, 4 calls)


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
    server.ws_config(**{"runtime.max_conversations": 3, "voice.prompt_dir": str(voices)})
    port = server.serve()
    url = f"ws://127.0.0.1:{port}/api/chat"
    asks = [url, f"{url}?voice_prompt=other.wav&text_prompt=You%20are%20Bo.",
            f"{url}?voice_prompt=demo_voice.wav&text_prompt=You%20are%20Cy."]

    async def main() -> tuple[list[dict], list[bytes], dict]:
        outs: list[dict] = [{}, {}, {}]
        lives = [asyncio.Event() for _ in asks]
        seconds = (1.6, 3.2, 3.2)  # the first caller hangs up early
        calls = [asyncio.create_task(converse(a, s, o, e))
                 for a, s, o, e in zip(asks, seconds, outs, lives, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in lives)), 180)
        busy = await refused(url)  # three calls live: the fourth is refused
        await calls[0]
        # The first caller's slot is freed once its conversation is flushed.
        await asyncio.to_thread(server.wait_status, lambda s: s.get("calls") == 2
                                and s.get("conversations") == 3, 120, server.proc)
        fourth: dict = {}
        await converse(url, 1.6, fourth, asyncio.Event())
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
    journal = "".join(p.read_text() for p in (server.dir / "journal").rglob("*.md"))
    assert journal.count("Session ended after") == 4, journal
