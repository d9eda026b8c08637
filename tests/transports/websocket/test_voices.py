"""A caller's ``voice_prompt`` picks any voice in the voices folder: the engine primes from
that voice's snapshot (built once, then cached), the next caller without it is back on the
configured voice, and traversal, unknown names and over-long voices get kind 5 and a close."""

from __future__ import annotations

import asyncio
import math
import shutil
import subprocess
from urllib.parse import quote

import aiohttp
import numpy as np
import pytest

from entropi.core.constants import FRAME_RATE
from entropi.engine.voice import save_voice
from tests.service.conftest import ROOT, log_events
from tests.transports.websocket.conftest import ServerRun
from tests.transports.websocket.test_websocket import ogg_pages, refused

pytestmark = pytest.mark.slow


async def short_call(url: str) -> bytes:
    """Handshake, a second of speech, hang up; returns the first message."""
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        first = await ws.receive(timeout=60)
        for page in ogg_pages(1.0):
            await ws.send_bytes(page)
            await asyncio.sleep(0.08)
    return first.data


def test_voice_prompt_switches_voices_per_call(server: ServerRun):
    voices = server.dir / "voices"
    voices.mkdir()
    shutil.copy(ROOT / "voices" / "demo_voice.wav", voices / "demo_voice.wav")
    subprocess.run(["espeak-ng", "-v", "en-gb", "-s", "150", "-w", str(voices / "second.wav"),
                    "Good evening. I am the other voice on this line."], check=True)
    limit = math.ceil(4.0 * FRAME_RATE)  # voice.max_prompt_seconds of config.demo.yaml
    codes = np.random.default_rng(1).integers(0, 2048, (8, limit + 10))
    save_voice(voices / "long.voice.pt", codes, voices / "second.wav", "tiny")
    server.ws_config(**{"voice.prompt_dir": str(voices), "voice.max_prompt_seconds": 4.0})
    port = server.serve()
    url = f"ws://127.0.0.1:{port}/api/chat"

    def one_call(query: str, n: int) -> None:
        assert asyncio.run(short_call(url + query)) == b"\x00"  # handshake after priming
        server.wait_status(lambda s: s.get("state") == "waiting" and s.get("conversations") == n,
                           proc=server.proc)

    one_call("?voice_prompt=second.wav", 1)
    one_call("", 2)  # no voice_prompt: the configured voice again
    one_call("?voice_prompt=second.wav", 3)  # its snapshot is cached

    for name, why in [("../../etc/passwd", b"voices folder"), ("/etc/passwd", b"voices folder"),
                      ("missing.wav", b"no voice named"),
                      ("long.voice.pt", b"context budget allows 50 frames")]:
        got = asyncio.run(refused(url + "?voice_prompt=" + quote(name, safe="")))
        assert got and got[0][0] == 5 and why in got[0], (name, got)
        assert b"/voices/" not in got[0]  # no server path in what the caller is told
    one_call("", 4)  # the refusals left the daemon waiting, the engine intact

    assert server.stop() == 0
    events = log_events(server.output())
    started = [e["voice"] for e in events if e.get("event") == "call_started"]
    assert started == ["second.wav", "demo_voice.wav", "second.wav", "long.voice.pt",
                       "demo_voice.wav"]
    chosen = [(e["voice"], e["cached"], e["frames"]) for e in events
              if e.get("event") == "voice_selected"]
    ready = next(e for e in events if e.get("event") == "engine_ready")
    default_frames = ready["voice_frames"]
    second_frames = chosen[0][2]
    assert second_frames != default_frames
    assert chosen == [("second.wav", False, second_frames),
                      ("demo_voice.wav", True, default_frames),
                      ("second.wav", True, second_frames),
                      ("demo_voice.wav", True, default_frames)]
    # The over-long voice was loaded and measured, then refused (no snapshot built for it).
    refusals = [e["reason"] for e in events if e.get("event") == "call_refused"]
    assert len(refusals) == 4 and "long.voice.pt" in refusals[-1]
    assert server.summary()["conversations"] == 4
