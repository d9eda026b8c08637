"""One async httpx client for every OpenAI-compatible chat-completions server.

Local servers (llama.cpp, Ollama, vLLM, LM Studio, the embedded xllamacpp one) and OpenRouter
share this code path; OpenRouter only adds headers and the privacy ``provider`` fields.
Failures become :class:`ChatError` with a short ``reason`` ("timeout", "http 500",
"stream error", "invalid json", ...) that the compactor reports as its fallback reason.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import hashlib
import json
import os
import random
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx

from entropi.config import SecondaryModelSection
from entropi.core.errors import LLMError
from entropi.core.logs import get_logger

log = get_logger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503})
# Statuses where a retry cannot help: the message tells the user what to fix.
_FATAL_HINTS = {
    400: "bad request (400)",
    401: "invalid or missing API key (401)",
    402: "out of credits (402)",
    403: "forbidden (403): the key may lack access to this model",
    404: "model or endpoint not found (404): check secondary_model.model and base_url",
}
# A misbehaving server may ignore max_tokens; stop reading after this many characters per
# requested token (generous: tokens average ~4 characters).
_CHARS_PER_TOKEN_CAP = 8
# Bytes read from the wire, whatever the server sends: an answer may take this much per
# requested token (a streamed event wraps each token in ~300 bytes of JSON) plus a fixed
# allowance; an error body only needs its first line or two. Beyond that we hang up.
_BYTES_PER_TOKEN_CAP = 1024
# A whole JSON answer carries each token once: even all-\uXXXX escapes stay far under this.
_JSON_BYTES_PER_TOKEN_CAP = 64
_BODY_BASE_BYTES = 64 * 1024
_ERROR_BODY_BYTES = 8 * 1024
# Statuses that no retry or later window can fix while the config stays the same.
_REFUSING_STATUSES = frozenset({401, 402})
# Config fingerprint → the refusal: asked once per process, then no more requests.
_refusals: dict[str, ChatError] = {}


class ChatError(LLMError):
    """A failed request; ``reason`` is a short tag, ``fatal`` means retrying cannot help."""

    def __init__(self, message: str, reason: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.fatal = fatal


@dataclass(frozen=True)
class ChatReply:
    text: str
    model: str | None
    latency_ms: float
    truncated: bool = False  # cut by max_tokens or by the runaway-answer cap


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` is either seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# The conversation of the request in flight (per task): what an error body must not repeat.
_SENT: contextvars.ContextVar[str] = contextvars.ContextVar("entropi_llm_sent", default="")
_ECHO_RUN = 12  # letters and digits in a row shared with the request: an echo, withheld


def _letters(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())  # blind to case, spacing and escaping


def _scrub(text: str) -> str:
    """``text`` unless it repeats any of the request's conversation (a server that echoes
    the request in its error would put the user's words into the logs)."""
    sent, said = _letters(_SENT.get()), _letters(text)
    if sent and any(said[i:i + _ECHO_RUN] in sent
                    for i in range(max(0, len(said) - _ECHO_RUN + 1))):
        return f"(a {len(text)}-character message that repeats the request, withheld)"
    return text


def _error_text(body: bytes) -> str:
    """The server's own error message, if any, kept short for one log/error line."""
    try:
        data = json.loads(body)
        err = data.get("error", data) if isinstance(data, dict) else data
        msg = err.get("message") if isinstance(err, dict) else err
        text = str(msg)
    except (ValueError, AttributeError):
        text = body.decode("utf-8", "replace")
    return _scrub(" ".join(text.split())[:160])


class ChatClient:
    """Chat completions over httpx with timeouts, retries and SSE streaming."""

    def __init__(self, section: SecondaryModelSection, base_url: str | None = None,
                 backend_name: str | None = None) -> None:
        url = base_url or section.effective_base_url
        if not url:
            raise LLMError("secondary_model.base_url: not set; give the server's URL, "
                           "e.g. http://127.0.0.1:8080/v1")
        self.section = section
        self.base_url = url.rstrip("/")
        self.backend = backend_name or section.backend
        self.label = "OpenRouter" if section.backend == "openrouter" else f"LLM at {self.base_url}"
        self._headers = self._build_headers(section)
        self._fingerprint = _fingerprint(self.base_url, section, self._headers)
        timeout = httpx.Timeout(connect=section.connect_timeout_seconds,
                                read=section.read_timeout_seconds,
                                write=section.read_timeout_seconds, pool=None)
        # trust_env=False: a proxy from the environment must never see the transcript.
        self._http = httpx.AsyncClient(timeout=timeout, headers=self._headers, trust_env=False)

    @staticmethod
    def _build_headers(section: SecondaryModelSection) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = section.api_key.get_secret_value() if section.api_key else None
        if section.backend == "openrouter":
            key = key or os.environ.get("OPENROUTER_API_KEY")
            if not key:
                raise LLMError("OpenRouter: no API key; export OPENROUTER_API_KEY or set "
                               "secondary_model.api_key: ${OPENROUTER_API_KEY}")
            if section.openrouter.referer:
                headers["HTTP-Referer"] = section.openrouter.referer
            if section.openrouter.title:
                headers["X-OpenRouter-Title"] = section.openrouter.title
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def request_body(self, messages: list[dict[str, str]], *, max_tokens: int | None = None,
                     temperature: float | None = None, stream: bool | None = None,
                     response_format: dict[str, Any] | None = None) -> dict[str, Any]:
        s = self.section
        body: dict[str, Any] = {
            "model": s.model,
            "messages": messages,
            "max_tokens": max_tokens or s.max_tokens,
            "temperature": s.temperature if temperature is None else temperature,
            "stream": s.stream if stream is None else stream,
        }
        if response_format is not None:
            body["response_format"] = response_format
        if s.backend == "openrouter":
            if s.fallback_models:
                body["models"] = [s.model, *s.fallback_models]
            body["provider"] = {"data_collection": s.openrouter.data_collection,
                                "zdr": s.openrouter.zdr}
        return body

    async def complete(self, messages: list[dict[str, str]], *, max_tokens: int | None = None,
                       temperature: float | None = None, stream: bool | None = None,
                       response_format: dict[str, Any] | None = None,
                       retry_deadline: float | None = None) -> ChatReply:
        """One completion; retries 429/502/503 only while the retry fits ``retry_deadline``
        (``time.monotonic()`` seconds); the whole call is bounded by total_timeout_seconds."""
        refused = _refusals.get(self._fingerprint)
        if refused is not None:  # said once already: no request until the config changes
            raise refused
        body = self.request_body(messages, max_tokens=max_tokens, temperature=temperature,
                                 stream=stream, response_format=response_format)
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(self.section.total_timeout_seconds):
                text, truncated, model = await self._with_retries(body, retry_deadline)
        except TimeoutError:
            log.warning("llm_timeout", backend=self.backend,
                        total_timeout_s=self.section.total_timeout_seconds)
            raise ChatError(f"{self.label}: no answer within "
                            f"{self.section.total_timeout_seconds:g} s", "timeout") from None
        latency = (time.monotonic() - t0) * 1000
        log.debug("llm_reply", backend=self.backend, model=model, chars=len(text),
                  latency_ms=round(latency, 1))
        return ChatReply(text=text, model=model, latency_ms=latency, truncated=truncated)

    async def _with_retries(self, body: dict[str, Any],
                            retry_deadline: float | None) -> tuple[str, bool, str | None]:
        attempt = 0
        while True:
            try:
                return await self._once(body)
            except _Retryable as exc:
                attempt += 1
                delay = exc.retry_after
                if delay is None:  # exponential backoff with jitter
                    delay = min(4.0, 0.25 * 2 ** (attempt - 1)) * (1 + random.random() / 4)
                fits = retry_deadline is None or time.monotonic() + delay < retry_deadline
                if attempt > self.section.max_retries or not fits:
                    log.warning("llm_gave_up", backend=self.backend, status=exc.status,
                                attempts=attempt, retry_after_s=exc.retry_after)
                    raise ChatError(f"{self.label}: HTTP {exc.status} after {attempt} "
                                    f"attempt(s): {exc.detail}", f"http {exc.status}") from None
                log.info("llm_retry", backend=self.backend, status=exc.status, attempt=attempt,
                         delay_s=round(delay, 3))
                await asyncio.sleep(delay)

    async def _once(self, body: dict[str, Any]) -> tuple[str, bool, str | None]:
        url = f"{self.base_url}/chat/completions"
        sent = _SENT.set("\n".join(str(m.get("content", "")) for m in body["messages"]))
        try:
            async with self._http.stream("POST", url, json=body) as resp:
                if resp.status_code != 200:
                    raw, _ = await _read_capped(resp, _ERROR_BODY_BYTES)
                    self._raise_for_status(resp, raw)
                per_token = _BYTES_PER_TOKEN_CAP if body["stream"] else _JSON_BYTES_PER_TOKEN_CAP
                limit = _BODY_BASE_BYTES + body["max_tokens"] * per_token
                if body["stream"]:
                    return await self._read_stream(resp, body["max_tokens"], limit)
                raw, whole = await _read_capped(resp, limit)
                if not whole:
                    self._too_large(limit)
                return self._parse_json_reply(raw)
        except httpx.TimeoutException as exc:
            log.warning("llm_timeout", backend=self.backend, kind=type(exc).__name__)
            raise ChatError(f"{self.label}: {type(exc).__name__}", "timeout") from None
        except httpx.TransportError as exc:
            log.warning("llm_unreachable", backend=self.backend, error=type(exc).__name__)
            raise ChatError(f"{self.label}: cannot reach the server ({type(exc).__name__})",
                            "unreachable") from None
        finally:
            _SENT.reset(sent)

    def _raise_for_status(self, resp: httpx.Response, raw: bytes) -> None:
        status = resp.status_code
        detail = _error_text(raw)
        if status in RETRY_STATUSES:
            raise _Retryable(status, _retry_after_seconds(resp.headers.get("Retry-After")),
                             detail)
        hint = _FATAL_HINTS.get(status)
        if status in _REFUSING_STATUSES:
            known = _refusals.get(self._fingerprint)
            if known is not None:  # a request sent alongside already said it
                raise known
            error = ChatError(f"{self.label}: {hint}: {detail}; no more requests until the "
                              "config changes", f"http {status}", fatal=True)
            _refusals[self._fingerprint] = error
            log.error("llm_refused", backend=self.backend, status=status, detail=detail,
                      action="no more requests until the config changes")
            raise error
        log.warning("llm_http_error", backend=self.backend, status=status, detail=detail)
        if hint:
            raise ChatError(f"{self.label}: {hint}: {detail}", f"http {status}", fatal=True)
        raise ChatError(f"{self.label}: HTTP {status}: {detail}", f"http {status}")

    def _parse_json_reply(self, raw: bytes) -> tuple[str, bool, str | None]:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if isinstance(data, dict) and "error" in data and not data.get("choices"):
            self._stream_error(data["error"])
        try:
            choice = data["choices"][0]  # type: ignore[index]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            log.warning("llm_invalid_json", backend=self.backend,
                        body=_scrub(raw[:80].decode("utf-8", "replace")))
            raise ChatError(f"{self.label}: the reply is not chat-completion JSON",
                            "invalid json") from None
        if choice.get("finish_reason") == "error":
            self._stream_error(choice.get("error") or "finish_reason error")
        return str(text), choice.get("finish_reason") == "length", data.get("model")

    def _too_large(self, limit: int) -> NoReturn:
        log.warning("llm_answer_too_large", backend=self.backend, limit_bytes=limit)
        raise ChatError(f"{self.label}: the answer is over {limit} bytes; hung up",
                        "too large")

    async def _read_stream(self, resp: httpx.Response, max_tokens: int,
                           limit: int) -> tuple[str, bool, str | None]:
        parts: list[str] = []
        size = 0
        cap = max_tokens * _CHARS_PER_TOKEN_CAP
        model = None
        cut = False
        finished = False  # [DONE] or a finish_reason: anything else is a cut connection
        lines = _bounded_lines(resp.aiter_bytes(), limit)
        try:
            async for data in _sse_data(lines):
                if data == "[DONE]":
                    finished = True
                    break
                try:
                    event = json.loads(data)
                except ValueError:
                    log.warning("llm_invalid_json", backend=self.backend,
                                data=_scrub(data[:80]))
                    raise ChatError(f"{self.label}: a stream event is not JSON",
                                    "invalid json") from None
                if not isinstance(event, dict):
                    raise ChatError(f"{self.label}: a stream event is not an object",
                                    "invalid json")
                if "error" in event:  # OpenRouter reports mid-stream failures with HTTP 200
                    self._stream_error(event["error"])
                model = event.get("model", model)
                for choice in event.get("choices") or []:
                    if choice.get("finish_reason") == "error":
                        self._stream_error(choice.get("error") or "finish_reason error")
                    cut = cut or choice.get("finish_reason") == "length"
                    finished = finished or bool(choice.get("finish_reason"))
                    piece = (choice.get("delta") or {}).get("content") or ""
                    parts.append(piece)
                    size += len(piece)
                if size > cap:
                    log.warning("llm_answer_truncated", backend=self.backend, chars=size,
                                max_tokens=max_tokens)
                    return "".join(parts)[:cap], True, model
        except _BodyTooLarge:
            self._too_large(limit)
        if not finished:
            log.warning("llm_stream_cut", backend=self.backend, chars=size)
            raise ChatError(f"{self.label}: the stream ended before the answer did",
                            "stream cut")
        return "".join(parts), cut, model

    def _stream_error(self, err: Any) -> NoReturn:
        detail = _error_text(json.dumps({"error": err}).encode())
        log.warning("llm_stream_error", backend=self.backend, detail=detail)
        raise ChatError(f"{self.label}: error inside the answer: {detail}", "stream error")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _BodyTooLarge(Exception):
    pass


def _fingerprint(base_url: str, section: SecondaryModelSection, headers: dict[str, str]) -> str:
    """What a refusal depends on: server, model and key (hashed, never kept in clear)."""
    key = headers.get("Authorization", "")
    return hashlib.sha256(f"{base_url}\n{section.backend}\n{section.model}\n{key}".encode()
                          ).hexdigest()


async def _read_capped(resp: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body; ``whole`` says whether that was all of it."""
    buf = bytearray()
    async for chunk in resp.aiter_bytes():
        buf += chunk
        if len(buf) > limit:
            return bytes(buf[:limit]), False
    return bytes(buf), True


async def _bounded_lines(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[str]:
    """Lines of a byte stream (LF or CRLF), at most ``limit`` bytes in all:
    httpx's own line reader would buffer a newline-free body without end."""
    pending = b""
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise _BodyTooLarge
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.removesuffix(b"\r").decode("utf-8", "replace")
    if pending:
        yield pending.removesuffix(b"\r").decode("utf-8", "replace")


class _Retryable(Exception):
    def __init__(self, status: int, retry_after: float | None, detail: str) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after = retry_after
        self.detail = detail


async def _sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The ``data`` payloads of an SSE stream; comments (``: ...``) and other fields skipped.

    Multi-line ``data:`` fields are joined with newlines per the SSE spec."""
    buf: list[str] = []
    async for line in lines:
        if not line:
            if buf:
                yield "\n".join(buf)
                buf = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            buf.append(value[1:] if value.startswith(" ") else value)
    if buf:
        yield "\n".join(buf)
