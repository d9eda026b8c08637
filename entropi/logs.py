"""structlog setup: human console lines on a TTY, JSON lines otherwise (journald)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal

import structlog

LogFormat = Literal["auto", "console", "json"]


def resolve_format(fmt: LogFormat, stream=None) -> Literal["console", "json"]:
    if fmt != "auto":
        return fmt
    stream = stream or sys.stderr
    # journald sets JOURNAL_STREAM; a pipe or file gets machine-readable lines too.
    if os.environ.get("JOURNAL_STREAM") or not getattr(stream, "isatty", lambda: False)():
        return "json"
    return "console"


def configure_logging(level: str = "info", fmt: LogFormat = "auto", stream=None) -> None:
    stream = stream or sys.stderr
    numeric = logging.getLevelName(level.upper())
    renderer: structlog.typing.Processor
    if resolve_format(fmt, stream) == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # Libraries that use stdlib logging (httpx, huggingface_hub) go to the same stream.
    logging.basicConfig(stream=stream, level=max(numeric, logging.WARNING), force=True)


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
