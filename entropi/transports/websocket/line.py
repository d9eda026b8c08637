"""CallLine: how one process answers ``/api/chat``, whatever server holds the socket.

The aiohttp server of the single daemon (``server.py``) and the ASGI app the cluster's
replicas serve behind Ray Serve's proxy (``asgi.py``) both hand each accepted socket to
:meth:`CallLine.answer`: the busy check, the request checks, kind 5 and close on a refusal,
then the call's :class:`WebSocketTransport`, queued for the conversation loop, read until it
ends. One implementation of the protocol, two servers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from entropi.config import Config
from entropi.core.logs import get_logger
from entropi.transports.websocket import protocol as p
from entropi.transports.websocket.feed import LiveFeed
from entropi.transports.websocket.transport import WebSocketTransport, Wire

log = get_logger(__name__)

# What the server may add to a checked request before the call starts (the cluster takes the
# person's lock); raises Refused to turn the caller away.
Admit = Callable[[p.CallRequest], Any]


class CallLine:
    """Up to ``slots`` calls at once; the next caller gets kind 5 "busy" at once."""

    def __init__(self, cfg: Config, feed: LiveFeed, slots: int = 1,
                 admit: Admit | None = None, voice_dirs: Sequence[Path] | None = None) -> None:
        self.cfg = cfg
        self.voice_dirs = tuple(voice_dirs) if voice_dirs else None
        self.feed = feed
        self.slots = slots
        self._admit = admit
        self._calls: asyncio.Queue[WebSocketTransport] = asyncio.Queue()
        self.in_use = 0
        self.active: list[WebSocketTransport] = []  # calls answered and not yet released
        self.refused = 0
        self.answered = 0

    async def next_call(self) -> WebSocketTransport:
        return await self._calls.get()

    def release(self, call: WebSocketTransport | None = None) -> None:
        """A conversation is flushed to memory: its slot (and its admission) is free."""
        self.in_use = max(0, self.in_use - 1)
        if call in self.active:
            self.active.remove(call)
        done = getattr(getattr(call, "request", None), "done", None)
        if done is not None:
            done()

    async def answer(self, ws: Wire, query: Mapping[str, str], user_id: str | None,
                     remote: str, *, abort: Callable[[], None] | None = None,
                     backlog: Callable[[], int] | None = None) -> None:
        """Serve one accepted socket until its call is over (the loop closes it).
        ``user_id``: whose token the server found (None: the single-user files)."""
        try:
            if self.in_use >= self.slots:
                raise p.Refused("busy: another conversation is in progress" if self.slots == 1
                                else f"busy: all {self.slots} conversations are in progress")
            req = p.check_request(query, self.cfg, user_id, self.voice_dirs)
            if self._admit is not None:
                req = self._admit(req)
        except p.Refused as exc:
            self.refused += 1
            log.warning("call_refused", remote=remote, reason=str(exc))
            with contextlib.suppress(ConnectionError, RuntimeError):  # gone before hearing why
                await ws.send_bytes(p.error_message(str(exc)))
            await ws.close()
            return
        if req.ignored:
            log.info("call_params_ignored", remote=remote, params=list(req.ignored))
        self.in_use += 1
        self.answered += 1
        call = WebSocketTransport(
            ws, req.config(self.cfg), remote,
            on_text=lambda text: self.feed.publish("text", text=text), abort=abort,
            backlog=backlog)
        call.request = req  # type: ignore[attr-defined]
        self.active.append(call)
        log.info("call_started", remote=remote, user=req.user_id,
                 text_prompt=req.text_prompt is not None,
                 voice=req.voice.name if req.voice else self.cfg.voice.prompt_file)
        await call.start()
        self._calls.put_nowait(call)
        await call.receive()
        await call.ended.wait()  # the loop closes the call after flushing the conversation
