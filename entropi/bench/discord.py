"""``entropi bench discord``: the Discord audio plumbing under simulated voice traffic.

Three simulated people take turns talking (with some overlap) into the real
``DiscordTransport``: py-cord's packets go into ``EntropiSink`` from a separate thread as
py-cord's router delivers them, the controller's side reads one frame per 80 ms tick of the
local clock and writes one agent frame back, and py-cord's player side reads 3840 B every
20 ms. Every ``--stall-every`` seconds the talker's network stalls for ``--stall-ms`` and
then delivers the held packets in one burst.

By default time is simulated (runs faster than real time; ``late_frames`` is then 0 by
construction); ``--real-time`` paces it by the wall clock so ``late_frames`` measures the
event loop. ``mix_ms`` (time to mix one frame) is real CPU time either way;
``added_latency_ms`` is packet arrival → handed to the controller, on the transport's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import numpy as np

from entropi.core.percentiles import percentile

HELP = "Discord transport: frames, late frames, dropped packets, mix time, added latency"
PEOPLE = ((101, "Ann"), (102, "Bob"), (103, "Cleo"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, default=10.0, help="traffic length (default 10)")
    p.add_argument("--real-time", action="store_true", help="pace by the wall clock")
    p.add_argument("--stall-ms", type=float, default=200.0,
                   help="network stall before each burst (default 200)")
    p.add_argument("--stall-every", type=float, default=30.0,
                   help="seconds between stalls (default 30)")
    p.add_argument("--seed", type=int, default=7)


def _speechlike(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Noise shaped like syllables (4 Hz envelope) at a talking level, 24 kHz."""
    n = int(seconds * 24000)
    t = np.arange(n) / 24000
    env = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, None) ** 2
    noise = np.convolve(rng.standard_normal(n), np.ones(8) / 8, mode="same")
    return (0.25 * env * noise / (np.abs(noise).max() + 1e-9)).astype(np.float32)


def run(args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from entropi.config import DiscordSection
    from entropi.core.constants import FRAME_SIZE
    from entropi.memory.consent import ConsentStore
    from entropi.transports.discord.consent import ConsentGate
    from entropi.transports.discord.simulate import (
        SimClock,
        SimMember,
        VoiceThread,
        schedule_player,
        schedule_talk,
        to_packets,
    )
    from entropi.transports.discord.transport import DiscordTransport

    class _NoNetwork:
        async def start(self, sink, source) -> None: ...
        async def close(self) -> None: ...
        def status(self) -> dict[str, Any]:
            return {}

    rng = np.random.default_rng(args.seed)
    clock, voice = SimClock(real_time=args.real_time), VoiceThread()
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        store = ConsentStore(Path(tmp) / "consent.json", default_remember=False)
        t = DiscordTransport(DiscordSection(guild_id=1, channel_id=2), _NoNetwork(),
                             ConsentGate(store), clock=clock)
        await t.start()
        total = args.minutes * 60
        members = [SimMember(i, n) for i, n in PEOPLE]
        clips = [to_packets(_speechlike(rng, s)) for s in (1.5, 2.5, 4.0, 6.0)]
        # Turns: someone talks, a pause, the next one (sometimes interrupting).
        at, next_stall, turns = 0.5, args.stall_every, 0
        while at < total - 7:
            who = members[turns % 3]
            packets = clips[int(rng.integers(len(clips)))]
            late = None
            if at >= next_stall:
                late = (len(packets) // 3, 5, args.stall_ms / 1000 - 0.1)
                next_stall += args.stall_every
            schedule_talk(clock, voice, t.sink, who, packets, at, late=late)
            at += len(packets) * 0.02 + float(rng.uniform(-0.4, 1.2))  # <0: overlap
            turns += 1
        reads: list[int] = []
        schedule_player(clock, t.source, 0.0, total, reads)
        frame = np.zeros(FRAME_SIZE, dtype=np.float32)
        clock.restart()
        wall0 = time.perf_counter()
        frames = 0
        while clock.now() < total - 0.08:
            pcm = await t.read_frame()
            assert pcm is not None
            t.write_frame(frame)
            frames += 1
        wall = time.perf_counter() - wall0
        voice.close()
        s = t.stats()
        mix, lat = t.mixer.mix_ms.values(), t.mixer.latency_ms.values()
        return {"frames": frames, "late_frames": s.late_frames,
                "dropped_packets": t.mixer.dropped_packets,
                "mix_ms_p50": percentile(mix, 50, 4),
                "mix_ms_p99": percentile(mix, 99, 4),
                "added_latency_ms_p50": percentile(lat, 50),
                "added_latency_ms_p99": percentile(lat, 99),
                "packets": t.mixer.packets, "turns": turns,
                "output_reads": len(reads), "output_read_bytes": sorted(set(reads)),
                "output_underruns": s.underruns, "simulated_seconds": round(total, 1),
                "wall_seconds": round(wall, 1), "real_time": args.real_time}
