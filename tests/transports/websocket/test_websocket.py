"""The real daemon as a websocket server: moshi's unmodified client, more callers, hostile
input, the daemon waiting for the next caller, and access control."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import sphn

from entropi.audio.wav import read_wav
from entropi.core.constants import FRAME_SIZE, SAMPLE_RATE
from tests.service.conftest import ROOT, log_events
from tests.transports.websocket.conftest import ServerRun, moshi_client, wait_for

pytestmark = pytest.mark.slow


def ogg_pages(seconds: float, offset_s: float = 20.0) -> list[bytes]:
    """Kind-1 messages: demo speech encoded as moshi's client does (one page per frame)."""
    pcm = read_wav(ROOT / "voices" / "demo_input.wav")
    start = int(offset_s * SAMPLE_RATE)
    writer = sphn.OpusStreamWriter(SAMPLE_RATE)
    pages = []
    for k in range(int(seconds / 0.08)):
        page = writer.append_pcm(pcm[start + k * FRAME_SIZE:start + (k + 1) * FRAME_SIZE])
        pages.append(b"\x01" + page)
    return pages


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def refused(url: str) -> list[bytes]:
    """Everything the server sends a caller it refuses, up to the close."""
    got = []
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        async for msg in ws:
            got.append(msg.data)
        assert ws.closed
    return got


async def talk_then_attack(url: str) -> dict:
    """A second conversation: handshake first, audio both ways, then hostile messages."""
    out: dict = {"kinds": []}
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        first = await ws.receive(timeout=60)
        out["first"] = first.data

        async def reader():
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    out["kinds"].append(msg.data[0])
        task = asyncio.create_task(reader())
        for page in ogg_pages(2.4):
            await ws.send_bytes(page)
            await asyncio.sleep(0.08)  # real-time pace: the client is the clock
        for _ in range(300):  # replies trail by the model's time (a loaded CPU: seconds)
            if out["kinds"].count(1) >= 30:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        out["audio_back"] = out["kinds"].count(1)
        await ws.send_bytes(b"\x63 garbage of an unknown kind")
        await ws.send_bytes(b"\x01 a kind-1 message that is not Ogg")
        for _ in range(2000):  # a flood of tiny messages
            await ws.send_bytes(b"\x01")
        # The server hangs up while the 10 MB message is still going out.
        with contextlib.suppress(ConnectionError):
            await ws.send_bytes(b"\x01" + bytes(10 * 1024 * 1024))
        await asyncio.wait_for(task, 30)
        out["closed"] = ws.closed
    return out


def stuck_client(port: int, seconds: float) -> str:
    """A caller that sends audio and never reads a byte (tiny receive window)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /api/chat HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert b" 101 " in head.split(b"\r\n")[0], head
    pages = ogg_pages(20.0, offset_s=0.0)
    end = time.monotonic() + seconds
    sent = 0
    try:
        while time.monotonic() < end:
            payload = pages[sent % len(pages)]
            mask = os.urandom(4)
            body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            sock.sendall(bytes([0x82, 0x80 | len(payload)]) + mask + body if len(payload) < 126
                         else bytes([0x82, 0x80 | 126]) + len(payload).to_bytes(2, "big")
                         + mask + body)
            sent += 1
            time.sleep(0.01)  # 8x real time: the model, not the client, sets the pace
        return "still open"
    except OSError as exc:
        return type(exc).__name__
    finally:
        sock.close()


def test_moshi_client_callers_and_hostile_input(server: ServerRun):
    server.ws_config()
    port = server.serve()
    url = f"ws://127.0.0.1:{port}/api/chat"

    # 1. The unmodified moshi client; its microphone starts once the persona is primed.
    client = moshi_client(port, server.dir, seconds=16.0)
    server.wait_status(lambda s: s.get("state") == "live", proc=server.proc)
    busy = asyncio.run(refused(url))  # a second caller meanwhile
    assert busy[0][0] == 5 and b"busy" in busy[0], busy
    (server.dir / "start").touch()
    stats_file = server.dir / "client.json"

    def client_done() -> bool:
        c = json.loads(stats_file.read_text()) if stats_file.exists() else {}
        return bool(c.get("mic_done")) and c["samples_received"] // FRAME_SIZE >= \
            c["frames_sent"] - 1
    wait_for(client_done, 90, "the moshi client's replies")
    time.sleep(0.5)
    client.send_signal(signal.SIGINT)
    client.wait(timeout=30)
    server.wait_status(lambda s: s.get("state") == "waiting" and s.get("conversations") == 1,
                       proc=server.proc)
    c = json.loads(stats_file.read_text())
    back = c["samples_received"] // FRAME_SIZE
    assert c["frames_sent"] == 200 and abs(back - c["frames_sent"]) <= 1, c
    events = log_events(server.output())
    ends = [e for e in events if e.get("event") == "window_end"]
    assert ends, "no window boundary in 16 s of speech"
    # The thinking clip's frames came back after the boundary (frames count from priming).
    cut = ends[0]["frames"]
    assert back > cut + 5
    played = read_wav(server.dir / "client.json.wav")
    clip = played[cut * FRAME_SIZE:(cut + 5) * FRAME_SIZE]
    assert float(np.sqrt(np.mean(clip ** 2))) > 0.01  # a spoken clip, not silence
    assert "unknown message kind 0" in (server.dir / "client.err").read_text()  # handshake
    printed = (server.dir / "client.out").read_text().split()
    said = [word for line in (server.dir / "transcript.txt").read_text().splitlines()
            if line.startswith("agent: ") for word in line[len("agent: "):].split()]
    assert said and printed[:len(said)] == said, (printed, said)

    # 2. Path traversal in voice_prompt: kind 5 and close; the daemon keeps waiting.
    traversal = asyncio.run(refused(url + "?voice_prompt=../../etc/passwd"))
    assert traversal[0][0] == 5 and b"voices folder" in traversal[0]

    # 3. The next caller gets a fresh conversation: handshake before any audio, one reply
    # per frame; then garbage, non-Ogg, a flood and a 10 MB message.
    rss_before = rss_mb(server.proc.pid)
    second = asyncio.run(talk_then_attack(url + "?voice_prompt=demo_voice.wav&text_topk=3"))
    assert second["first"] == b"\x00"
    assert abs(second["audio_back"] - 30) <= 1, second["audio_back"]
    assert second["closed"]  # the 10 MB message ended the call
    server.wait_status(lambda s: s.get("state") == "waiting" and s.get("conversations") == 2,
                       proc=server.proc)

    # 4. A caller that stops reading is hung up on; the daemon does not stall.
    assert stuck_client(port, seconds=60) != "still open"
    server.wait_status(lambda s: s.get("state") == "waiting" and s.get("conversations") == 3,
                       proc=server.proc)
    assert rss_mb(server.proc.pid) - rss_before < 64

    assert server.stop() == 0
    out = server.output()
    events = log_events(out)
    names = [e.get("event") for e in events]
    for problem in ("ws_unknown_kind", "ws_not_ogg", "ws_flood", "ws_message_too_big",
                    "ws_client_not_reading"):
        assert names.count(problem) == 1, (problem, names.count(problem))
    assert names.count("call_refused") == 2
    ignored = [e for e in events if e.get("event") == "call_params_ignored"]
    assert ignored and ignored[0]["params"] == ["text_topk"]
    assert server.summary()["conversations"] == 3
    # Each conversation left its session entry in the journal.
    journal = "".join(p.read_text() for p in (server.dir / "journal").rglob("*.md"))
    assert journal.count("Session ended after") == 3, journal


def test_access_control(server: ServerRun, tmp_path):
    """Non-loopback without a token refuses to start (before loading anything); a wrong
    token gets 401 and the log never holds the token."""
    server.ws_config(**{"server.host": "0.0.0.0"})
    env = {k: v for k, v in os.environ.items() if k != "ENTROPI_SERVER_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "entropi", "run", "--config",
                           str(server.dir / "config.yaml")], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "ENTROPI_SERVER_TOKEN" in proc.stderr
