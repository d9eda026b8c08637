"""``entropi bench cluster``: what Serve's proxy adds, against the single daemon, in one run.

First one scripted caller talks to the single daemon (its own aiohttp server), then a local
Ray starts ``--replicas`` replicas of the same config behind Serve's proxy and ``--callers``
callers talk at once. Every caller sends moshi's protocol at real-time pace and times each
frame from sending it to its reply (every input frame gets one reply): the round trip
includes the model, so the two runs differ by what the proxy and the extra process hop add
(on a machine where the replicas do not compete for cores with each other). Callers past the
replicas' slots hear "busy" and are counted.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from entropi.core.percentiles import percentile

TOKEN_ENV = "ENTROPI_BENCH_TOKEN_"
HELP = "single daemon vs replicas behind Ray Serve: round trip per frame, lost frames"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default="config.demo.yaml", metavar="PATH")
    p.add_argument("--callers", type=int, default=2, metavar="N",
                   help="callers at once through the proxy")
    p.add_argument("--replicas", type=int, default=2, metavar="N")
    p.add_argument("--seconds", type=float, default=10.0, help="speech per caller")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import tempfile

    from entropi.config import load_config

    cfg = load_config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        single_cfg, cluster_cfg = _configs(cfg, Path(tmp), args.replicas, args.callers)
        single = _single(single_cfg, args.seconds)
        many = _cluster(cluster_cfg, args.callers, args.seconds)
    out: dict[str, Any] = {"replicas": args.replicas, "callers": args.callers,
                           "seconds": args.seconds, "config": str(args.config)}
    out |= _summary("single", [single])
    out |= _summary("cluster", [c for c in many if c["first"] == b"\x00"])
    out["cluster_busy"] = sum(c["first"][:1] == b"\x05" for c in many)
    for q in ("p50", "p99"):
        a, b = out[f"single_rtt_ms_{q}"], out[f"cluster_rtt_ms_{q}"]
        out[f"proxy_added_ms_{q}"] = round(b - a, 2) if a is not None and b is not None else None
    return out


def _configs(cfg: Any, tmp: Path, replicas: int, callers: int) -> tuple[Any, Any]:
    """The run's files in ``tmp``; in the cluster, one person per caller (a person's calls
    take turns), each with a token in the environment the local Ray inherits."""
    import os
    import secrets

    audio = cfg.audio.model_copy(update={"input": "websocket", "output": "websocket"})
    memory = cfg.memory.model_copy(update={"journal_dir": tmp / "journal",
                                           "profile_path": tmp / "profile.json",
                                           "users_dir": tmp / "people"})
    base = cfg.model_copy(update={
        "audio": audio, "memory": memory,
        "conversation": cfg.conversation.model_copy(update={"transcript_file": None}),
        "service": cfg.service.model_copy(update={"status_file": tmp / "status.json",
                                                   "watchdog": False})})
    local = {"host": "127.0.0.1", "tokens": {}, "tokens_file": None}
    single = base.model_copy(update={
        "server": cfg.server.model_copy(update=local | {"port": _free_port()})})
    (tmp / "people").mkdir()
    tokens = {f"{TOKEN_ENV}{k}": f"caller{k}" for k in range(callers)}
    for var in tokens:
        os.environ[var] = secrets.token_hex(8)
    cluster = base.model_copy(update={
        "server": cfg.server.model_copy(update=local | {"port": _free_port(), "tokens": tokens}),
        "cluster": cfg.cluster.model_copy(update={
            "address": None, "replicas": replicas, "min_replicas": None, "max_replicas": None,
            "num_gpus": 0.0 if cfg.runtime.device == "cpu" else cfg.cluster.num_gpus,
            "state_dir": tmp / "state"})})
    return single, cluster


def _single(cfg: Any, seconds: float) -> dict[str, Any]:
    """The single daemon in a process of its own, as the replicas are: the client's timing
    must not share an event loop with the server it measures."""
    import asyncio
    import multiprocessing
    import time

    from entropi.service.status import read_status

    proc = multiprocessing.get_context("spawn").Process(target=_serve, args=(cfg,))
    proc.start()
    try:
        while (read_status(cfg.service.status_file) or {}).get("state") != "waiting":
            if not proc.is_alive():
                raise RuntimeError(f"the daemon stopped early (exit {proc.exitcode})")
            time.sleep(0.1)
        return asyncio.run(caller(f"ws://127.0.0.1:{cfg.server.port}/api/chat", seconds))
    finally:
        proc.terminate()  # SIGTERM: the daemon's own graceful stop
        proc.join(60)


def _serve(cfg: Any) -> None:
    import asyncio

    from entropi.core.logs import configure_logging
    from entropi.service.daemon import Daemon, RunOptions

    configure_logging("warning")  # a spawned process starts with structlog's debug default
    asyncio.run(Daemon(cfg, RunOptions()).serve())


def _cluster(cfg: Any, callers: int, seconds: float) -> list[dict[str, Any]]:
    import asyncio

    from entropi.service.cluster import deploy, shutdown

    if cfg.model.source == "tiny":  # made once, not by each replica at the same time
        from entropi.engine.tiny import ensure_tiny_checkpoint

        ensure_tiny_checkpoint(cfg.model.cache_dir, cfg.model.tiny_seed)
    deploy(cfg)
    try:
        import os

        url = f"ws://127.0.0.1:{cfg.server.port}/api/chat?token="

        async def all_callers() -> list[dict[str, Any]]:
            # A moment apart: Serve's router counts a call once its replica has it, so two
            # calls in the same few milliseconds may both pick one replica (one hears busy).
            return list(await asyncio.gather(*(
                caller(url + os.environ[f"{TOKEN_ENV}{k}"], seconds, delay=0.3 * k)
                for k in range(callers))))

        return asyncio.run(all_callers())
    finally:
        shutdown()


async def caller(url: str, seconds: float, delay: float = 0.0) -> dict[str, Any]:
    """One caller at real-time pace: the first message, frames sent and answered, and the
    round trip of each answered frame (ms)."""
    import asyncio
    import time

    import aiohttp
    import numpy as np
    import sphn

    from entropi.core.constants import FRAME_SECONDS, FRAME_SIZE, SAMPLE_RATE

    rng = np.random.default_rng(0)
    writer = sphn.OpusStreamWriter(SAMPLE_RATE)
    n = int(seconds / FRAME_SECONDS)
    pages = [b"\x01" + writer.append_pcm((rng.standard_normal(FRAME_SIZE) * 0.05)
                                         .astype(np.float32)) for _ in range(n)]
    sent_at: list[float] = []
    rtt: list[float] = []
    await asyncio.sleep(delay)
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        first = await ws.receive_bytes(timeout=120)
        if first != b"\x00":
            return {"first": first, "sent": 0, "answered": 0, "rtt_ms": []}

        async def reader() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY and msg.data[:1] == b"\x01" \
                        and len(rtt) < len(sent_at):
                    rtt.append((time.perf_counter() - sent_at[len(rtt)]) * 1e3)

        task = asyncio.create_task(reader())
        start = time.perf_counter()
        for k, page in enumerate(pages):
            sent_at.append(time.perf_counter())
            await ws.send_bytes(page)
            await asyncio.sleep(max(0.0, start + (k + 1) * FRAME_SECONDS - time.perf_counter()))
        last, still = -1, time.perf_counter()
        while time.perf_counter() - still < 1.0 and len(rtt) < n:  # replies in flight
            if len(rtt) != last:
                last, still = len(rtt), time.perf_counter()
            await asyncio.sleep(0.05)
        await ws.close()
        task.cancel()
    return {"first": first, "sent": n, "answered": len(rtt), "rtt_ms": rtt}


def _summary(name: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    sent = sum(c["sent"] for c in calls)
    answered = sum(c["answered"] for c in calls)
    rtts = [ms for c in calls for ms in c["rtt_ms"]]
    return {f"{name}_calls": len(calls), f"{name}_frames": sent,
            f"{name}_frames_lost": sent - answered,
            f"{name}_rtt_ms_p50": percentile(rtts, 50, 2),
            f"{name}_rtt_ms_p99": percentile(rtts, 99, 2)}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
