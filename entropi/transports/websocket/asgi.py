"""The caller-facing routes as a plain ASGI app: what a cluster replica serves behind Ray
Serve's proxy (``serve.ingress``).

Same routes and rules as the aiohttp server, minus the live event stream (a page left open
would hold one of the replica's few request slots for good): ``GET /api/chat`` (moshi's
protocol, through :class:`CallLine`), ``GET /`` (the page), ``/static/*``, ``GET /api/status``.
``/api/`` needs a token (:class:`~.protocol.Access`), ``/api/status`` the owner's. No web
framework: ASGI is small.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from entropi.core.logs import get_logger
from entropi.transports.websocket import protocol as p
from entropi.transports.websocket.line import CallLine
from entropi.transports.websocket.transport import WireError

log = get_logger(__name__)

STATIC = Path(__file__).parent / "static"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript",
          ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}

Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


class Headers(Mapping[str, str]):
    """ASGI's header pairs, looked up case-insensitively (as aiohttp's are)."""

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._d = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}

    def __getitem__(self, key: str) -> str:
        return self._d[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)


class AsgiWire:
    """An accepted ASGI websocket as the protocol's :class:`~.transport.Wire`."""

    def __init__(self, receive: Receive, send: Send, max_bytes: int) -> None:
        self._receive = receive
        self._send = send
        self._max_bytes = max_bytes
        self._closed = False

    async def send_bytes(self, data: bytes) -> None:
        if self._closed:
            raise ConnectionError("websocket closed")
        try:
            await self._send({"type": "websocket.send", "bytes": data})
        except Exception as exc:  # each ASGI server has its own "gone" error
            self._closed = True
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                await self._send({"type": "websocket.close", "code": 1000})
            except Exception as exc:  # already gone: nothing left to close
                log.debug("ws_close_failed", error=f"{type(exc).__name__}: {exc}")

    async def incoming(self) -> AsyncIterator[bytes | str]:
        while True:
            msg = await self._receive()
            kind = msg.get("type")
            if kind == "websocket.disconnect":
                self._closed = True
                return
            if kind != "websocket.receive":
                continue
            data = msg.get("bytes")
            if data is None:
                yield msg.get("text") or ""
            elif len(data) > self._max_bytes:
                await self.close()
                raise WireError("ws_message_too_big",
                                f"message over {self._max_bytes} bytes; closed")
            else:
                yield data


class AsgiApp:
    """``line`` answers the calls; ``status`` is what ``/api/status`` shows; ``access``
    tells whose token a request carries."""

    def __init__(self, line: CallLine, status: Callable[[], dict[str, Any]],
                 access: p.Access) -> None:
        self.line = line
        self._status = status
        self._access = access

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        path = scope.get("path", "/")
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        headers = Headers(scope.get("headers", []))
        user_id = None
        if path.startswith("/api/"):
            caller = self._access.caller(query, headers)
            if caller is None or (path != "/api/chat" and not caller.owner):
                log.warning("unauthorized", remote=_remote(scope), path=path)
                if kind == "websocket":  # closed before accept: the client sees HTTP 403
                    await send({"type": "websocket.close", "code": 4401})
                elif caller is None:
                    await _respond(send, 401, b"401: a valid token is needed\n", "text/plain")
                else:  # a user's token opens their calls, not the status of everyone's
                    await _respond(send, 403, b"403: the status needs the owner's token\n",
                                   "text/plain")
                return
            user_id = caller.user_id
        if kind == "websocket":
            await self._websocket(path, query, user_id, scope, receive, send)
        elif kind == "http":
            await self._http(path, send)

    async def _websocket(self, path: str, query: dict[str, str], user_id: str | None,
                         scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if (await receive()).get("type") != "websocket.connect":
            return
        if path != "/api/chat":
            await send({"type": "websocket.close", "code": 4404})
            return
        await send({"type": "websocket.accept"})
        wire = AsgiWire(receive, send, self.line.cfg.server.max_message_bytes)
        await self.line.answer(wire, query, user_id, _remote(scope))

    async def _http(self, path: str, send: Send) -> None:
        if path == "/api/status":
            await _respond(send, 200, json.dumps(self._status()).encode(), "application/json")
            return
        name = "index.html" if path == "/" else path.removeprefix("/static/")
        found = [f for f in STATIC.iterdir() if f.name == name] if (
            path == "/" or path.startswith("/static/")) else []  # by listing: no traversal
        if not found or not found[0].is_file():
            await _respond(send, 404, b"404: not found\n", "text/plain")
            return
        await _respond(send, 200, found[0].read_bytes(),
                       _TYPES.get(found[0].suffix, "application/octet-stream"))


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _remote(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"
