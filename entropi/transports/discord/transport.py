"""``DiscordTransport``: the bot's voice channel as an :class:`AudioTransport`.

py-cord's receiver thread writes each speaker's decoded packets into ``EntropiSink``; its
player thread reads ``AgentSource`` every 20 ms. The controller's side runs on a **local**
80 ms clock (``read_frame`` returns frame ``k`` at ``t0 + (k + 1) × 80 ms`` whatever the
network does), so a silent channel, a gap, a late burst or a reconnect never stalls the
conversation, and the systemd watchdog keeps being fed while the bot waits to rejoin.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable, Sequence
from typing import Any, Protocol

import discord
import numpy as np
from discord.sinks import Sink

from entropi.audio.stats import AudioStats
from entropi.config import DiscordSection
from entropi.core.constants import FRAME_SECONDS
from entropi.memory.consent import Persisted
from entropi.text.utterance import Utterance
from entropi.transports.discord.consent import ConsentGate
from entropi.transports.discord.mixer import PACKETS_PER_FRAME, InputMixer, OutputChunker


class Clock(Protocol):
    def now(self) -> float: ...
    async def sleep_until(self, t: float) -> None: ...


class LoopClock:
    """The monotonic clock (asyncio's own); read from py-cord's threads too."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep_until(self, t: float) -> None:
        delay = t - self.now()
        await asyncio.sleep(max(0.0, delay))


class Link(Protocol):
    """The network side (``bot.DiscordLink``): connects, hands the voice client our sink and
    source, rejoins on its own, answers status questions."""

    async def start(self, sink: Sink, source: discord.AudioSource) -> None: ...
    async def close(self) -> None: ...
    def status(self) -> dict[str, Any]: ...


def _user_id(user: Any) -> int | None:
    uid = getattr(user, "id", user)
    return uid if isinstance(uid, int) else None


class EntropiSink(Sink):
    """py-cord's receive end: ``write(data, user)`` from its packet-router thread."""

    __sink_listeners__: list[tuple[str, str]] = []  # noqa: RUF012 (py-cord's event table)

    def __init__(self, transport: DiscordTransport) -> None:
        super().__init__()
        self._t = transport

    def is_opus(self) -> bool:  # ask py-cord for decoded PCM
        return False

    def walk_children(self) -> list[Sink]:
        return []

    def write(self, data: Any, user: Any) -> None:  # type: ignore[override]
        pcm = getattr(data, "pcm", data)  # VoiceData (py-cord ≥ 2.7) or raw bytes
        uid = _user_id(user)
        if uid is None or not pcm:
            return
        self._t.receive(uid, _display_name(user), bytes(pcm))

    def cleanup(self) -> None:
        self.finished = True


def _display_name(user: Any) -> str:
    return str(getattr(user, "display_name", None) or getattr(user, "name", None)
               or getattr(user, "id", user))


class AgentSource(discord.AudioSource):
    """py-cord's send end: ``read()`` every 20 ms from its player thread; 3840 B always."""

    def __init__(self, chunker: OutputChunker) -> None:
        self._chunker = chunker

    def read(self) -> bytes:
        return self._chunker.read()

    def is_opus(self) -> bool:
        return False


class DiscordTransport:
    def __init__(self, cfg: DiscordSection, link: Link, gate: ConsentGate, *,
                 queue_frames: int = 8, jitter_frames: int = 1,
                 speech_dbfs: float = -50.0, clock: Clock | None = None) -> None:
        self.cfg = cfg
        self.link = link
        self.gate = gate
        self.clock: Clock = clock or LoopClock()
        self.mixer = InputMixer(max_buffer_frames=queue_frames,
                                speech_dbfs=speech_dbfs)
        self.chunker = OutputChunker(queue_frames, prebuffer_frames=jitter_frames)
        self.sink = EntropiSink(self)
        self.source = AgentSource(self.chunker)
        self._listen = None if cfg.listen == "everyone" else set(cfg.listen)
        self._names: dict[int, str] = {}
        self._speakers: list[str] = []
        self._stats = AudioStats()
        self._t0: float | None = None
        self._k = 0
        self._closed = False

    # ------------------------------------------------------------------ py-cord's threads

    def receive(self, user_id: int, name: str, pcm: bytes) -> None:
        if self._listen is not None and user_id not in self._listen:
            return  # not someone the bot was told to listen to
        if self._names.get(user_id) != name:
            self._names[user_id] = name
            self.gate.heard(user_id, name)
        self.mixer.push(user_id, name, pcm, self.clock.now())

    def left(self, user: Hashable) -> None:
        """A member left the channel (from the bot's voice-state event)."""
        self.mixer.leave(user)

    # ------------------------------------------------------------------ AudioTransport

    async def start(self) -> None:
        try:
            await self.link.start(self.sink, self.source)
        except BaseException:
            await self.link.close()  # no half-open session left behind the one-line error
            raise

    async def read_frame(self) -> np.ndarray | None:
        if self._closed:
            return None
        if self._t0 is None:  # the clock starts with the first read, after priming
            self._t0 = self.clock.now()
        due = self._t0 + (self._k + 1) * FRAME_SECONDS
        await self.clock.sleep_until(due)
        if self._closed:
            return None
        now = self.clock.now()
        if now - due > FRAME_SECONDS:
            self._stats.late_frames += 1
        frame, self._speakers = self.mixer.tick(now)
        self._k += 1
        self._stats.frames_in += 1
        return frame

    def write_frame(self, pcm: np.ndarray) -> None:
        if not self._closed:
            self.chunker.write(pcm)

    def active_speakers(self) -> Sequence[str]:
        return self._speakers

    def persisted(self, utterances: list[Utterance], prompt: str,
                  directive: dict[str, Any] | None) -> Persisted:
        return self.gate.persisted(utterances, prompt, directive)

    def stats(self) -> AudioStats:
        s = self._stats
        s.frames_out = self.chunker.frames
        s.underruns = self.chunker.empty_reads // PACKETS_PER_FRAME
        s.dropped_in = -(-self.mixer.dropped_packets // PACKETS_PER_FRAME)
        s.dropped_out = self.chunker.dropped_bytes // (PACKETS_PER_FRAME * 3840)
        s.callbacks = self.chunker.reads
        return AudioStats(**vars(s))

    def status_info(self) -> dict[str, Any]:
        """For ``entropi status``: channel, who is present, who opted in."""
        return self.link.status() | {"opted_in": self.gate.store.opted_in()}

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.link.close()
