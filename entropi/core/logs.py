"""structlog setup: human console lines (coloured on a TTY), JSON lines only when asked
(``logging.format: json``, for journald), and :func:`narrate` for the few plain lines a person
starting the daemon reads (loading…, the page's URL, ready, the summary), whatever the format.

Every line passes :func:`redact` last before rendering (stdlib loggers such as httpx's too):
the values of known secrets (the config's ``${VAR}`` keys, secret-looking environment
variables, the journal key), ``Authorization``/``Bearer`` credentials, ``sk-…``/``hf_…``
keys and ``user:password@`` in URLs become ``[REDACTED]``, so a server that echoes a
request header back cannot put the key into the journal.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import Any, Literal

import structlog

LogFormat = Literal["auto", "console", "json"]
MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 8  # shorter values would redact ordinary words
_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
_PATTERNS = [
    # Authorization: Bearer xyz / "authorization": "xyz" / Bearer xyz
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token)\s+)?"
                r"[A-Za-z0-9._~+/=-]{8,}"), rf"\g<1>{MASK}"),
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{12,}"), rf"\g<1> {MASK}"),
    # api_key=VALUE / "x-api-key": "VALUE"; a ${VAR} reference or a plain word is no key.
    (re.compile(r"(?i)\b((?:x-)?api[-_]?key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._~+/=-]{12,}"),
     rf"\g<1>{MASK}"),
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"), MASK),  # OpenAI/OpenRouter-style keys
    (re.compile(r"\bhf_[A-Za-z0-9]{16,}"), MASK),  # Hugging Face tokens
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@:]+:[^/\s@]*@"), rf"\g<1>{MASK}@"),
]
_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None


def _spelled(secret: str) -> str:
    """A pattern for ``secret`` however a server echoes it: any case, and any character
    %-escaped (once or twice, hex in either case), as in a URL or a form body."""
    parts = []
    for char in secret:
        escaped = "".join(f"%(?:25)?{b:02x}" for b in char.encode())
        parts.append(f"(?:{re.escape(char)}|{escaped})")
    return "".join(parts)


def register_secret(value: str | None) -> None:
    """A value that must never appear in a log line (an API key read from the config)."""
    global _secret_pattern
    if value and len(value) >= MIN_SECRET_LENGTH and value not in _secrets:
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)  # the longest wins an overlap
        _secret_pattern = re.compile("|".join(_spelled(s) for s in ordered), re.IGNORECASE)


def register_env_secrets(env: Mapping[str, str] | None = None) -> None:
    """Values of secret-looking environment variables (``*_API_KEY``, ``HF_TOKEN``, ...)."""
    env = os.environ if env is None else env
    for name, value in env.items():
        if _SECRET_ENV.search(name):
            register_secret(value)


def redact(text: str) -> str:
    if _secret_pattern is not None:
        text = _secret_pattern.sub(MASK, text)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def _redact_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_redact_value(v) for v in value]
    return redact(str(value))  # URLs, paths, exceptions: logged as their text anyway


def redact_event(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: every value of every line, after exceptions are formatted."""
    return {k: _redact_value(v) for k, v in event_dict.items()}


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True


def resolve_format(fmt: LogFormat) -> Literal["console", "json"]:
    # auto is console wherever it goes (a pipe, journald): people read it first; machines
    # ask for JSON explicitly.
    return "json" if fmt == "json" else "console"


def narrate(text: str, stream=None) -> None:
    """One plain line for the person starting the daemon (stderr, flushed), whatever the log
    format or TTY: the first thing they see, long before a model has loaded."""
    stream = stream or sys.stderr
    print(f"entropi: {redact(text)}", file=stream, flush=True)


def configure_logging(level: str = "info", fmt: LogFormat = "auto", stream=None) -> None:
    stream = stream or sys.stderr
    register_env_secrets()
    numeric = logging.getLevelName(level.upper())
    renderer: structlog.typing.Processor
    if resolve_format(fmt) == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=getattr(stream, "isatty", lambda: False)())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # Libraries that use stdlib logging (httpx, huggingface_hub) go to the same stream.
    logging.basicConfig(stream=stream, level=max(numeric, logging.WARNING), force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_RedactingFilter())


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
