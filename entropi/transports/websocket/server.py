"""ChatServer: moshi's ``/api/chat`` for up to ``runtime.max_conversations`` callers at once
(one by default), the web page and its feed.

Routes: ``GET /api/chat`` (websocket, moshi's protocol), ``GET /`` (entropi's page),
``/static/*``, ``GET /api/status`` (JSON), ``GET /api/voices`` (the names a caller may pass
as ``voice_prompt``) and ``GET /api/events`` (server-sent events).
Every ``/api/`` route checks the token when one is set. The daemon takes callers with ``next_call``
and frees the line with ``release`` once the conversation is flushed to memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from entropi.config import Config, ServerSection
from entropi.core.errors import ConfigError
from entropi.core.logs import get_logger
from entropi.transports.websocket import protocol as p
from entropi.transports.websocket.feed import LiveFeed
from entropi.transports.websocket.transport import SEND_BUFFER_BYTES, WebSocketTransport

log = get_logger(__name__)

STATIC = Path(__file__).parent / "static"


class ChatServer:
    def __init__(self, cfg: Config, feed: LiveFeed, status: Callable[[], dict[str, Any]],
                 voice_dirs: Sequence[Path] | None = None) -> None:
        self.cfg = cfg
        self.feed = feed
        # Where voice_prompt names are looked up: the user's voices, then PersonaPlex's presets.
        self.voice_dirs = tuple(voice_dirs or (cfg.voice.prompt_dir,))
        self._status = status
        self._access = p.Access.load(cfg)  # refuses a non-loopback bind without a token
        self.max_calls = cfg.runtime.max_conversations
        self._calls: asyncio.Queue[WebSocketTransport] = asyncio.Queue(maxsize=self.max_calls)
        self.active = 0  # calls taken and not yet released (flushed)
        self._runner: web.AppRunner | None = None
        self.port = cfg.server.port
        self.url = ""  # the page's address, once listening
        self.refused = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(middlewares=[self._auth])
        app.add_routes([web.get("/api/chat", self._chat), web.get("/api/status", self._api_status),
                        web.get("/api/voices", self._voices), web.get("/api/events", self._events),
                        web.get("/", self._index),
                        web.static("/static", STATIC)])
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.server.host, self.cfg.server.port,
                           ssl_context=self._tls())
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError(f"server.port: cannot listen on {self.cfg.server.host}:"
                              f"{self.cfg.server.port} ({exc.strerror})") from None
        sockets = site._server.sockets if site._server else []  # port 0: the one we got
        if sockets:
            self.port = sockets[0].getsockname()[1]
        scheme = "https" if self.cfg.server.tls_cert else "http"
        host = self.cfg.server.host
        self.url = f"{scheme}://{f'[{host}]' if ':' in host else host}:{self.port}/"
        log.info("server_listening", url=self.url, token=not self._access.open,
                 users=self._access.users)

    def _tls(self) -> ssl.SSLContext | None:
        return tls_context(self.cfg.server)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def next_call(self) -> WebSocketTransport:
        return await self._calls.get()

    def release(self) -> None:
        """A conversation is flushed: its line is free for the next caller."""
        self.active = max(0, self.active - 1)

    # ------------------------------------------------------------------ routes

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        # The page and its scripts are public (the code is open); the calls and the live
        # data behind /api/ need a token. The live view shows whoever is talking, so a
        # user's token opens their own calls only.
        if request.path.startswith("/api/"):
            caller = self._access.caller(request.query, request.headers)
            if caller is None:
                log.warning("unauthorized", remote=request.remote, path=request.path)
                raise web.HTTPUnauthorized(text="401: a valid token is needed\n")
            # The voice list is what a caller picks from: every token may read it.
            if request.path not in ("/api/chat", "/api/voices") and not caller.owner:
                log.warning("forbidden", remote=request.remote, path=request.path,
                            user=caller.user_id)
                raise web.HTTPForbidden(text="403: the live view needs the owner's token\n")
            request["caller"] = caller
        return await handler(request)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=self.cfg.server.max_message_bytes)
        await ws.prepare(request)
        remote = str(request.remote)
        try:
            if self.active >= self.max_calls:
                raise p.Refused("busy: another conversation is in progress" if self.max_calls == 1
                                else f"busy: all {self.max_calls} conversations are in progress")
            req = p.check_request(request.query, self.cfg, request["caller"].user_id,
                                  self.voice_dirs)
        except p.Refused as exc:
            self.refused += 1
            log.warning("call_refused", remote=remote, reason=str(exc))
            await ws.send_bytes(p.error_message(str(exc)))
            await ws.close()
            return ws
        if req.ignored:
            log.info("call_params_ignored", remote=remote, params=list(req.ignored))
        self.active += 1
        transport = request.transport
        if transport is not None:
            _small_send_buffers(transport)
        call = WebSocketTransport(
            ws, req.config(self.cfg), remote,
            on_text=lambda text: self.feed.publish("text", text=text),
            abort=transport.abort if transport is not None else None,
            backlog=transport.get_write_buffer_size if transport is not None else None)
        call.request = req  # type: ignore[attr-defined]
        log.info("call_started", remote=remote, user=req.user_id,
                 text_prompt=req.text_prompt is not None,
                 voice=req.voice.name if req.voice else self.cfg.voice.prompt_file)
        await call.start()
        self._calls.put_nowait(call)
        await call.receive()
        await call.ended.wait()  # the daemon closes the call after flushing the conversation
        return ws

    async def _api_status(self, request: web.Request) -> web.Response:
        return web.json_response(self._status())

    async def _voices(self, request: web.Request) -> web.Response:
        preset = set(self.voice_dirs[1:])
        return web.json_response({
            "default": self.cfg.voice.prompt_file,
            "voices": [{"name": name, "preset": path.parent in preset}
                       for name, path in p.list_voices(self.voice_dirs)]})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
        await resp.prepare(request)
        await resp.write(f"data: {json.dumps({'type': 'status', **self._status()})}\n\n".encode())
        async for event in self.feed.subscribe():
            if event["type"] == "keepalive":
                await resp.write(b": keepalive\n\n")
            else:
                await resp.write(f"data: {json.dumps(event)}\n\n".encode())
        return resp

    async def _index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")


def _small_send_buffers(transport: asyncio.Transport) -> None:
    """Keep what waits for a slow caller small (kernel and asyncio buffers), so a client
    that stops reading shows up as a full send queue within seconds, not megabytes later."""
    transport.set_write_buffer_limits(high=SEND_BUFFER_BYTES)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        import socket

        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)


def _refuse_password() -> bytes:
    # A passphrase-protected key would make OpenSSL prompt on the terminal (or hang a service).
    raise ssl.SSLError("the key is encrypted; give an unencrypted PEM key")


def tls_context(s: ServerSection) -> ssl.SSLContext | None:
    """The server's TLS context, or None without TLS; ConfigError for PEM files that do not
    decode or a key that does not match the certificate (preflight calls this too)."""
    if s.tls_cert is None or s.tls_key is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(s.tls_cert, s.tls_key, password=_refuse_password)
    except (OSError, ssl.SSLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"server.tls_cert: cannot load {s.tls_cert} / {s.tls_key} "
                          f"({reason}); give a PEM certificate and its unencrypted key") from None
    return ctx
