"""``entropi bench websocket``: N conversations one after another through the real server,
or (``--callers N``) one caller alone and then N callers at once on the batched engine.

A scripted client speaks moshi's protocol at real-time pace (``--speed`` > 1 sends faster
than the model is clocked, the deliberately broken case). Reports frames sent and answered,
frames lost, and the latency the server adds: from a frame's arrival to its reply leaving,
minus the controller's step (model) time.
"""

from __future__ import annotations

import argparse
from typing import Any

from entropi.core.percentiles import percentile

HELP = "N scripted conversations through the websocket server; added latency, lost frames"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default="config.demo.yaml", metavar="PATH")
    p.add_argument("--conversations", type=int, default=3, metavar="N")
    p.add_argument("--seconds", type=float, default=10.0, help="speech per conversation")
    p.add_argument("--callers", type=int, default=1, metavar="N",
                   help="N callers at once (runtime.max_conversations: N) after one alone; "
                        "per-caller added latency against the lone caller's")
    p.add_argument("--speed", type=float, default=1.0,
                   help="client pace relative to real time (above 1 overruns the model)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio
    import tempfile
    from pathlib import Path

    import numpy as np

    from entropi.config import load_config
    from entropi.service.daemon import Daemon, RunOptions

    cfg = load_config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        cfg = cfg.model_copy(update={
            "audio": cfg.audio.model_copy(update={"input": "websocket", "output": "websocket"}),
            "server": cfg.server.model_copy(update={"host": "127.0.0.1", "port": 0}),
            "memory": cfg.memory.model_copy(update={"journal_dir": t / "journal",
                                                     "profile_path": t / "profile.json"}),
            "conversation": cfg.conversation.model_copy(update={"transcript_file": None}),
            "service": cfg.service.model_copy(update={"status_file": t / "status.json",
                                                       "watchdog": False})})
        if args.callers > 1:
            cfg = cfg.model_copy(update={"runtime": cfg.runtime.model_copy(
                update={"max_conversations": args.callers})})
        daemon = Daemon(cfg, RunOptions())
        client = asyncio.run(_drive(daemon, args))
    if args.callers > 1:
        return _callers_result(daemon, client, args)
    def pct(key: str, q: float) -> float | None:
        return percentile((ms for call in daemon.calls for ms in call[key]), q, 3)

    lost = sum(c["sent"] - c["answered"] for c in client)
    return {
        "conversations": len(client),
        "frames": sum(c["sent"] for c in client),
        "frames_answered": sum(c["answered"] for c in client),
        "frames_lost": lost,
        "server_dropped_in": sum(c["dropped_in"] for c in daemon.calls),
        "added_latency_ms_p50": pct("added_ms", 50),
        "added_latency_ms_p99": pct("added_ms", 99),
        "added_latency_ms_max": pct("added_ms", 100),
        "send_ms_p50": pct("send_ms", 50),  # part of added: Opus encode + websocket send
        "send_ms_p99": pct("send_ms", 99),
        "queue_wait_ms_p50": pct("wait_ms", 50),  # part of added: behind slower model steps
        "queue_wait_ms_p99": pct("wait_ms", 99),
        "model_step_ms_p50": pct("step_ms", 50),  # excluded from added
        "model_step_ms_p99": pct("step_ms", 99),
        "handshake_ms_p50": round(float(np.median([c["handshake_ms"] for c in client])), 1),
        "speed": args.speed,
        "config": str(args.config),
    }


def _callers_result(daemon: Any, client: list[dict[str, Any]],
                    args: argparse.Namespace) -> dict[str, Any]:
    """The lone caller's figures, each concurrent caller's, and what re-injections cost."""
    import numpy as np

    alone, together = daemon.calls[0], daemon.calls[1:]

    def per_call(key: str, q: float) -> list[float | None]:
        return [percentile(call[key], q, 3) for call in together]

    added_p99 = per_call("added_ms", 99)
    single_p99 = percentile(alone["added_ms"], 99, 3)
    return {
        "callers": args.callers,
        "frames": sum(c["sent"] for c in client[1:]),
        "frames_lost": sum(c["sent"] - c["answered"] for c in client[1:]),
        "single_frames_lost": client[0]["sent"] - client[0]["answered"],
        "single_added_latency_ms_p50": percentile(alone["added_ms"], 50, 3),
        "single_added_latency_ms_p99": single_p99,
        "added_latency_ms_p50": per_call("added_ms", 50),
        "added_latency_ms_p99": added_p99,
        "added_p99_over_single_ms": (max(v or 0.0 for v in added_p99) - (single_p99 or 0.0)),
        "single_model_step_ms_p99": percentile(alone["step_ms"], 99, 3),
        "model_step_ms_p99": per_call("step_ms", 99),  # waits for the tick in flight too
        "handshake_ms_p50": round(float(np.median([c["handshake_ms"] for c in client[1:]])), 1),
        **{k: daemon.summary.get(k) for k in ("reinjections", "reinjections_overlapping",
                                               "frames_behind_reinjection", "ticks",
                                               "slots_per_tick_mean")},
        "speed": args.speed, "seconds": args.seconds, "config": str(args.config),
    }


async def _drive(daemon: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    import asyncio

    serve = asyncio.create_task(daemon.serve())
    try:
        results = []
        if args.callers > 1:  # one alone, then N at once: the same daemon and engine
            port = await _waiting(daemon, serve, conversations=0)
            results.append(await _conversation(port, args.seconds, args.speed))
            port = await _waiting(daemon, serve, conversations=1)
            results += await asyncio.gather(*(_conversation(port, args.seconds, args.speed)
                                              for _ in range(args.callers)))
            await _waiting(daemon, serve, conversations=1 + args.callers)
            return results
        for k in range(args.conversations):
            port = await _waiting(daemon, serve, conversations=k)
            results.append(await _conversation(port, args.seconds, args.speed))
        await _waiting(daemon, serve, conversations=args.conversations)
    finally:
        daemon.stop_requested.set()
        await serve
    return results


async def _waiting(daemon: Any, serve: Any, conversations: int) -> int:
    import asyncio

    while not (daemon.live_status().get("state") == "waiting"
               and daemon.live_status().get("conversations") == conversations):
        if serve.done():
            serve.result()  # re-raise why the daemon stopped
            raise RuntimeError("the daemon stopped early")
        await asyncio.sleep(0.05)
    return int(daemon.live_status()["port"])


async def _conversation(port: int, seconds: float, speed: float) -> dict[str, Any]:
    import asyncio
    import time

    import aiohttp
    import numpy as np
    import sphn

    from entropi.core.constants import FRAME_SECONDS, FRAME_SIZE, SAMPLE_RATE

    rng = np.random.default_rng(0)
    writer = sphn.OpusStreamWriter(SAMPLE_RATE)
    n = int(seconds / FRAME_SECONDS)
    # Bursts of noise and silence: "speech" with pauses, so windows end now and then.
    pages = []
    for k in range(n):
        loud = 0.1 if (k // 25) % 2 == 0 else 0.0
        pcm = (rng.standard_normal(FRAME_SIZE) * loud).astype(np.float32)
        pages.append(b"\x01" + writer.append_pcm(pcm))
    answered = 0
    async with aiohttp.ClientSession() as s, s.ws_connect(f"ws://127.0.0.1:{port}/api/chat") as ws:
        t0 = time.perf_counter()
        first = await ws.receive_bytes(timeout=120)
        assert first == b"\x00", first
        handshake_ms = (time.perf_counter() - t0) * 1e3

        async def reader() -> None:
            nonlocal answered
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY and msg.data[:1] == b"\x01":
                    answered += 1

        task = asyncio.create_task(reader())
        start = time.perf_counter()
        for k, page in enumerate(pages):
            await ws.send_bytes(page)
            due = start + (k + 1) * FRAME_SECONDS / speed
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        # Replies still in flight: wait until they stop coming.
        last, still = -1, time.perf_counter()
        while time.perf_counter() - still < 1.0 and answered < n:
            if answered != last:
                last, still = answered, time.perf_counter()
            await asyncio.sleep(0.05)
        await ws.close()
        task.cancel()
    return {"sent": n, "answered": answered, "handshake_ms": handshake_ms}
