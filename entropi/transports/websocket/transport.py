"""WebSocketTransport: one remote caller's audio as 80 ms frames (moshi's protocol).

The caller's audio is the clock: every 1920 samples decoded from its Ogg Opus pages become
one frame in the drop-oldest queue, so a client that outruns the model never builds up
latency. Replies are encoded at once and sent by one sender task through a bounded queue;
``write_frame`` and ``write_text`` never block, and a client that stops reading is hung up
on instead of growing the queue. Audio that arrives before ``go_live`` (the handshake, sent
once the persona is primed) is dropped.

The socket itself is a :class:`Wire`: aiohttp's (the single daemon, ``server.py``) and an ASGI
one (the cluster behind Ray Serve's proxy, ``asgi.py``) both carry this one implementation of
the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import numpy as np

from entropi.audio.queues import DropOldestQueue
from entropi.audio.stats import AudioStats
from entropi.config import Config
from entropi.core.constants import FRAME_SECONDS, FRAME_SIZE, SAMPLE_RATE
from entropi.core.logs import get_logger
from entropi.transports.websocket import protocol as p

log = get_logger(__name__)

# Replies the OS may hold for a slow caller (a few seconds of Opus); more waits in our queue,
# where send_timeout_seconds notices a caller that stopped reading.
SEND_BUFFER_BYTES = 8 * 1024
_LATENCY_CAPACITY = 20_000  # per-frame samples kept for the benchmark
# A real client sends ~13 messages a second; far more is a flood, dropped unread.
_MAX_MESSAGES_PER_SECOND = 250
_CLOSE_TIMEOUT_S = 1.0


class WireError(Exception):
    """The socket broke while reading; ``key`` names the problem for the call's counts."""

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(detail)
        self.key = key


class Wire(Protocol):
    """One accepted websocket, whatever server holds it."""

    async def send_bytes(self, data: bytes) -> None:
        """Send one binary message; ConnectionError or RuntimeError once the socket is gone."""

    async def close(self) -> None: ...

    def incoming(self) -> AsyncIterator[bytes | str]:
        """Binary messages as bytes, text frames as str, until the caller closes; a broken
        socket raises :class:`WireError`."""


class WebSocketTransport:
    """See module doc. ``receive`` is driven by the server's request handler."""

    def __init__(self, ws: Wire, cfg: Config, remote: str,
                 on_text: Callable[[str], None] | None = None,
                 abort: Callable[[], None] | None = None,
                 backlog: Callable[[], int] | None = None) -> None:
        import sphn  # Opus codec; only loaded when a caller connects

        self.cfg = cfg
        self.remote = remote
        self._ws = ws
        self._on_text = on_text or (lambda text: None)
        self._abort = abort or (lambda: None)
        self._backlog = backlog or (lambda: 0)  # bytes written but not yet taken by the OS
        self._opus_in = sphn.OpusStreamReader(SAMPLE_RATE)
        self._opus_out = sphn.OpusStreamWriter(SAMPLE_RATE)
        self._in_q = DropOldestQueue(cfg.audio.queue_frames)
        self._pcm = np.zeros(0, dtype=np.float32)  # decoded samples short of a whole frame
        self._send: deque[tuple[bytes, float, float, float]] = deque()
        self._send_ready = asyncio.Event()
        self._frame_ready = asyncio.Event()
        self._picked: deque[tuple[float, float]] = deque(maxlen=cfg.server.send_queue_messages)
        self._stats = AudioStats()
        self._live = False
        self._closed = False
        self._waiting = False
        self._sender: asyncio.Task[None] | None = None
        self.ended = asyncio.Event()  # set once the call is over (either side)
        self.end_reason = ""
        # Per frame, for the benchmark: queue wait before the controller took the frame,
        # the controller's step (model time), and wait + encode + send = the server's share.
        self.wait_ms: deque[float] = deque(maxlen=_LATENCY_CAPACITY)
        self.step_ms: deque[float] = deque(maxlen=_LATENCY_CAPACITY)
        self.send_ms: deque[float] = deque(maxlen=_LATENCY_CAPACITY)  # encode + send
        self.added_ms: deque[float] = deque(maxlen=_LATENCY_CAPACITY)
        self.counts: dict[str, int] = {}  # problems seen, logged once each, counted after
        self._second = 0
        self._in_second = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._sender = asyncio.create_task(self._send_loop(), name="ws-sender")

    def go_live(self) -> None:
        """The persona is primed: send the handshake; audio is accepted from now on."""
        if not self._live and not self._closed:
            self._live = True
            self._enqueue(p.message(p.HANDSHAKE), 0.0, 0.0)
            log.info("call_live", remote=self.remote)

    def refuse(self, reason: str) -> None:
        """Send kind 5 with ``reason``, then hang up (after the message is out)."""
        self._enqueue(p.error_message(reason), 0.0, 0.0)
        self.hang_up(reason)

    def hang_up(self, reason: str) -> None:
        if not self._closed:
            self._closed = True
            self.end_reason = reason
            self._frame_ready.set()  # a waiting read_frame returns None
            self._send_ready.set()

    async def close(self) -> None:
        self.hang_up(self.end_reason or "conversation over")
        if self._sender is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._sender), _CLOSE_TIMEOUT_S)
            self._sender.cancel()
        try:
            await asyncio.wait_for(self._ws.close(), _CLOSE_TIMEOUT_S)
        except (TimeoutError, ConnectionError, RuntimeError):
            self._abort()  # a client that reads nothing never acknowledges a close
        self.ended.set()
        log.info("call_closed", remote=self.remote, reason=self.end_reason, **vars(self.stats()),
                 **self.counts)

    # ------------------------------------------------------------------ incoming

    async def receive(self) -> None:
        """Read messages until the socket closes; the server handler awaits this."""
        try:
            async for data in self._ws.incoming():
                if isinstance(data, bytes):
                    self._on_message(data)
                else:  # text frames are not part of the protocol
                    self._problem("ws_text_message", "text frame ignored")
                if self._closed:
                    break
        except WireError as exc:
            self._problem(exc.key, str(exc))
        finally:
            self.hang_up(self.end_reason or "caller hung up")

    def _on_message(self, data: bytes) -> None:
        second = int(time.monotonic())
        if second != self._second:
            self._second, self._in_second = second, 0
        self._in_second += 1
        if self._in_second > _MAX_MESSAGES_PER_SECOND:
            self._problem("ws_flood", f"over {_MAX_MESSAGES_PER_SECOND} messages a second; "
                          "the excess is dropped")
            return
        if not data:
            self._problem("ws_empty_message", "empty message ignored")
            return
        kind, payload = data[0], data[1:]
        if kind != p.AUDIO:
            if kind not in p.KNOWN_KINDS:
                self._problem("ws_unknown_kind", f"message of unknown kind {kind} ignored")
            return  # control / metadata / ping from web UIs: nothing to do
        if not payload.startswith(p.OGG_MAGIC):
            self._problem("ws_not_ogg", "kind-1 message is not an Ogg page; ignored")
            return
        try:
            pcm = self._opus_in.append_bytes(payload)
        except ValueError as exc:  # the Ogg stream is broken for good: end the call
            self._problem("ws_bad_ogg", f"undecodable Ogg Opus ({exc}); hanging up")
            self.refuse("undecodable audio")
            return
        self._take_pcm(np.asarray(pcm, dtype=np.float32).reshape(-1), time.perf_counter())

    def _take_pcm(self, pcm: np.ndarray, stamp: float) -> None:
        if not self._live:
            key = "frames_before_handshake"  # dropped: the persona is not primed yet
            self.counts[key] = self.counts.get(key, 0) + max(1, pcm.size // FRAME_SIZE)
            return
        self._pcm = np.concatenate([self._pcm, pcm]) if self._pcm.size else pcm
        while self._pcm.size >= FRAME_SIZE:
            frame, self._pcm = self._pcm[:FRAME_SIZE].copy(), self._pcm[FRAME_SIZE:]
            self._in_q.put(frame, stamp)
            self._stats.frames_in += 1
        self._frame_ready.set()

    def _problem(self, key: str, text: str) -> None:
        """One log line per kind of problem per call; repeats are only counted."""
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.counts[key] == 1:
            log.warning(key, remote=self.remote, detail=text)

    # ------------------------------------------------------------------ frames

    @property
    def waiting_for_input(self) -> bool:
        """True while the controller waits for the caller (nothing queued): not a stall."""
        return self._waiting

    async def read_frame(self) -> np.ndarray | None:
        idle = self.cfg.server.idle_timeout_seconds
        while True:
            item = self._in_q.get()
            if item is not None:
                frame, stamp = item
                now = time.perf_counter()
                if now - stamp > FRAME_SECONDS:
                    self._stats.late_frames += 1
                self._picked.append((stamp, now))
                return frame
            if self._closed:
                return None
            self._frame_ready.clear()
            self._waiting = True
            try:
                await asyncio.wait_for(self._frame_ready.wait(), idle)
            except TimeoutError:
                log.warning("call_idle", remote=self.remote, seconds=idle)
                self.hang_up(f"no audio for {idle:g} s")
            finally:
                self._waiting = False

    def write_frame(self, pcm: np.ndarray) -> None:
        frame = np.ascontiguousarray(pcm, dtype=np.float32).reshape(-1)
        if frame.size != FRAME_SIZE:
            raise ValueError(f"write_frame needs {FRAME_SIZE} samples, got {frame.size}")
        now = time.perf_counter()
        arrived, picked = self._picked.popleft() if self._picked else (0.0, 0.0)
        if self._closed:
            return
        page = self._opus_out.append_pcm(frame)
        self._stats.frames_out += 1
        waited = 0.0
        if arrived:
            waited = picked - arrived  # in our queue, behind the model's earlier frames
            self.wait_ms.append(waited * 1e3)
            self.step_ms.append((now - picked) * 1e3)
        if page:
            self._enqueue(p.message(p.AUDIO, page), now, waited)

    def write_text(self, text: str) -> None:
        if text and not self._closed:
            self._enqueue(p.message(p.TEXT, text.encode()), 0.0, 0.0)
        self._on_text(text)

    def _enqueue(self, data: bytes, written: float, waited: float) -> None:
        now = time.monotonic()
        s = self.cfg.server
        if len(self._send) >= s.send_queue_messages or \
                (self._send and now - self._send[0][3] > s.send_timeout_seconds):
            self._stats.dropped_out += 1
            self._problem("ws_client_not_reading", f"{len(self._send)} messages unsent, the "
                          f"oldest for {now - self._send[0][3]:.1f} s; hanging up")
            self.hang_up("client stopped reading")
            return
        self._send.append((data, written, waited, now))
        self._send_ready.set()

    async def _send_loop(self) -> None:
        while True:
            while self._send:
                if self._backlog() > SEND_BUFFER_BYTES:  # the caller is not keeping up
                    if self._closed:
                        return
                    await asyncio.sleep(FRAME_SECONDS / 4)
                    continue
                data, written, waited, _ = self._send[0]
                try:
                    await self._ws.send_bytes(data)
                except (ConnectionError, RuntimeError) as exc:
                    self._problem("ws_send_failed", f"{type(exc).__name__}: {exc}")
                    self.hang_up("send failed")
                    return
                self._send.popleft()
                if written:
                    sent = (time.perf_counter() - written) * 1e3
                    self.send_ms.append(sent)
                    self.added_ms.append(waited * 1e3 + sent)
            if self._closed:
                return
            self._send_ready.clear()
            await self._send_ready.wait()

    def stats(self) -> AudioStats:
        s = AudioStats(**vars(self._stats))
        s.dropped_in += self._in_q.dropped
        return s
