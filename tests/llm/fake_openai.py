"""A local HTTP server that speaks the OpenAI/OpenRouter chat protocol and misbehaves on
purpose (the edge of the network is the one place the tests fake). Built on asyncio streams:
aiohttp is not installed and http.server cannot hang or stream as freely."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    """One scripted answer. ``kind``: "sse" (events), "json" (raw body), "status" (error
    status with a JSON error body), "hang" (never answer), "flood" (``size`` bytes of body:
    a chat answer that long with status 200, else an error body that long)."""

    kind: str = "sse"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    events: list[str] = field(default_factory=list)  # raw SSE lines, "" ends an event
    delay_s: float = 0.0  # before the status line (a slow model)
    size: int = 0  # "flood": body bytes


def sse_text(text: str, chunk_words: int = 1, comments: bool = False,
             finish: str = "stop") -> list[str]:
    """OpenAI-style SSE lines streaming ``text`` word by word."""
    words = text.split(" ")
    lines = []
    if comments:
        lines += [": OPENROUTER PROCESSING", ""]
    for i in range(0, len(words), chunk_words):
        piece = " ".join(words[i:i + chunk_words]) + (" " if i + chunk_words < len(words) else "")
        event = {"id": "x", "model": "fake/model",
                 "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        lines += [f"data: {json.dumps(event)}", ""]
        if comments and i == 0:
            lines += [": keep-alive", ""]
    done = {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
    return [*lines, f"data: {json.dumps(done)}", "", "data: [DONE]", ""]


def sse_cut(text: str) -> list[str]:
    """A stream that stops mid-answer: content events, then the connection closes (no
    finish_reason, no [DONE])."""
    return sse_text(text)[:-6]


def json_reply(text: str) -> Reply:
    body = {"model": "fake/model", "choices": [{"index": 0, "finish_reason": "stop",
                                                 "message": {"role": "assistant",
                                                             "content": text}}]}
    return Reply("json", body=json.dumps(body))


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeOpenAI:
    """``script`` is consumed one reply per request; the last reply repeats."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.directive_reply: Reply | None = None  # for requests that ask for JSON
        self.requests: list[Seen] = []
        self.flood_sent = 0  # body bytes a "flood" reply got onto the wire before a hang-up
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        # Python 3.11 has no Server.close_clients(): cancel hanging handlers ourselves.
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def next_reply(self) -> Reply:
        if len(self.script) > 1:
            return self.script.pop(0)
        return self.script[0] if self.script else Reply("sse", events=sse_text("Hello there."))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            request_line = (await reader.readline()).decode().strip()
            if not request_line:
                return
            method, path, _ = request_line.split(" ", 2)
            headers: dict[str, str] = {}
            while (line := (await reader.readline()).decode().strip()):
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
            body = json.loads(raw) if raw else {}
            self.requests.append(Seen(method, path, headers, body))
            wants_json = "response_format" in body and self.directive_reply is not None
            await self._answer(writer, self.directive_reply if wants_json else self.next_reply())
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        if reply.kind == "hang":
            await asyncio.sleep(3600)
        await asyncio.sleep(reply.delay_s)
        if reply.kind == "flood":
            await self._flood(writer, reply)
        elif reply.kind == "status":
            body = reply.body or json.dumps({"error": {"code": reply.status,
                                                      "message": f"fake {reply.status}"}})
            await self._head(writer, reply.status, "application/json", reply.headers, len(body))
            writer.write(body.encode())
        elif reply.kind == "json":
            await self._head(writer, reply.status, "application/json", reply.headers,
                             len(reply.body.encode()))
            writer.write(reply.body.encode())
        else:
            await self._head(writer, 200, "text/event-stream", reply.headers, None)
            for line in reply.events:
                writer.write(f"{line}\n".encode())
                await writer.drain()
        await writer.drain()

    async def _flood(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        """A huge body written in chunks, never held whole (the test process measures too)."""
        if reply.status == 200:
            head, tail = b'{"model": "fake/model", "choices": [{"index": 0, ' \
                b'"finish_reason": "stop", "message": {"content": "', b'"}}]}'
        else:
            head, tail = b'{"error": {"message": "', b'"}}'
        await self._head(writer, reply.status, "application/json", reply.headers, reply.size)
        chunk = b"blah " * 13_107  # 64 KiB of text
        writer.write(head)
        left = reply.size - len(head) - len(tail)
        while left > 0:
            piece = chunk[:left]
            writer.write(piece)
            await writer.drain()
            self.flood_sent += len(piece)
            left -= len(piece)
        writer.write(tail)

    @staticmethod
    async def _head(writer: asyncio.StreamWriter, status: int, ctype: str,
                    headers: dict[str, str], length: int | None) -> None:
        lines = [f"HTTP/1.1 {status} X", f"Content-Type: {ctype}", "Connection: close"]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
