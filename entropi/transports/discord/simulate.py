"""Simulated Discord voice traffic for tests and ``entropi bench discord`` (no network).

``SimClock`` is the transport's local clock with a schedule of events: packets a speaker's
client would deliver (handed to the real ``EntropiSink`` on a separate thread, as py-cord's
packet router does, as ``VoiceData``) and 20 ms reads of the ``AgentSource`` (as py-cord's
player thread does). Simulated time can run as fast as the CPU allows (``real_time=False``)
or be paced by the wall clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from entropi.audio.resample import resample
from entropi.core.constants import SAMPLE_RATE
from entropi.transports.discord.mixer import DISCORD_RATE, PACKET_BYTES

PACKET_SECONDS = 0.02


@dataclass(frozen=True)
class SimMember:
    """What py-cord hands the sink as ``user``: a member with an id and a display name."""

    id: int
    display_name: str


class VoiceThread:
    """One worker thread standing in for py-cord's packet-router thread."""

    def __init__(self) -> None:
        self._q: queue.Queue[tuple[Callable[[], None], threading.Event] | None] = queue.Queue()
        self._t = threading.Thread(target=self._run, name="sim-voice-router", daemon=True)
        self._t.start()

    def _run(self) -> None:
        while (item := self._q.get()) is not None:
            fn, done = item
            try:
                fn()
            finally:
                done.set()

    def call(self, fn: Callable[[], None]) -> None:
        done = threading.Event()
        self._q.put((fn, done))
        done.wait()

    def close(self) -> None:
        self._q.put(None)
        self._t.join(5)


class SimClock:
    def __init__(self, real_time: bool = False) -> None:
        self.real_time = real_time
        self._t = 0.0
        self._wall0 = time.monotonic()
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return time.monotonic() - self._wall0 if self.real_time else self._t

    def restart(self) -> None:
        """Time 0 is now (real-time runs: after the traffic was scheduled, not before)."""
        self._wall0 = time.monotonic()

    def at(self, t: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._events, (t, next(self._seq), fn))

    def run_until(self, t: float) -> None:
        while self._events and self._events[0][0] <= t:
            te, _, fn = heapq.heappop(self._events)
            self._t = max(self._t, te)
            fn()
        self._t = max(self._t, t)

    async def sleep_until(self, t: float) -> None:
        self.run_until(t)
        if self.real_time:
            await asyncio.sleep(max(0.0, t - self.now()))
        else:
            await asyncio.sleep(0)

    def pending(self) -> int:
        return len(self._events)


def to_packets(pcm24: np.ndarray) -> list[bytes]:
    """24 kHz mono float → Discord's 48 kHz stereo s16 20 ms packets (3840 B each)."""
    up = resample(pcm24, SAMPLE_RATE, DISCORD_RATE)
    s16 = (np.clip(up, -1, 1) * 32767).astype("<i2")
    step = PACKET_BYTES // 4
    n = -(-s16.size // step)
    s16 = np.pad(s16, (0, n * step - s16.size))
    stereo = np.repeat(s16, 2)
    return [stereo[i * step * 2:(i + 1) * step * 2].tobytes() for i in range(n)]


def schedule_talk(clock: SimClock, voice: VoiceThread, sink, member: SimMember,
                  packets: list[bytes], start: float, *, late: tuple[int, int, float] | None
                  = None, stop_after: int | None = None) -> None:
    """A speaker's packets every 20 ms from ``start``; ``late=(first, count, delay)``: the
    network stalls from packet ``first`` for ``count`` packets plus ``delay`` seconds, then
    everything held back arrives at once, in order; ``stop_after`` ends mid-sentence."""
    from discord.voice.packets import FakePacket, VoiceData

    burst = None if late is None else start + (late[0] + late[1]) * PACKET_SECONDS + late[2]
    for i, pcm in enumerate(packets[:stop_after]):
        t = start + i * PACKET_SECONDS
        if burst is not None and i >= late[0]:  # type: ignore[index]
            t = max(t, burst)
        data = VoiceData(FakePacket(member.id, i, i * 960), member, pcm=pcm)
        clock.at(t, lambda d=data: voice.call(lambda: sink.write(d, d.source)))


def schedule_player(clock: SimClock, source, start: float, end: float,
                    reads: list[int]) -> None:
    """py-cord's player: ``source.read()`` every 20 ms; the lengths go to ``reads``."""
    n = round((end - start) / PACKET_SECONDS)
    for i in range(n):
        clock.at(start + i * PACKET_SECONDS, lambda: reads.append(len(source.read())))
