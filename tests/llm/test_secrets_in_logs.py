"""No secret reaches a log line: redaction happens in the logging layer itself, for every
event of every module and for stdlib loggers (httpx), whatever a server echoes back."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from entropi.core.logs import configure_logging, get_logger, redact
from entropi.llm.client import ChatClient, ChatError
from tests.llm.conftest import API_KEY
from tests.llm.fake_openai import Reply


@pytest.fixture
def log_stream(monkeypatch) -> Iterator[io.StringIO]:
    monkeypatch.setenv("OPENROUTER_API_KEY", API_KEY)
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("debug", "json", stream=stream)
    yield stream
    structlog.reset_defaults()  # later tests must not log into this StringIO
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_server_echoing_the_authorization_header_cannot_log_the_key(
        make_cfg, fake, log_stream) -> None:
    # The audit's server: a 400 whose body quotes the request headers back.
    echo = {"error": {"message": f"bad request from Authorization: Bearer {API_KEY} "
                                 f"(key {API_KEY})"}}
    fake.script = [Reply("status", 400, body=json.dumps(echo))]
    cfg = make_cfg(secondary_model={"backend": "openrouter", "base_url": fake.base_url,
                                    "api_key": "${OPENROUTER_API_KEY}", "max_retries": 0})
    async with ChatClient(cfg.secondary_model) as client:
        with pytest.raises(ChatError) as err:
            await client.complete([{"role": "user", "content": "hi"}])
    text = log_stream.getvalue()
    assert "llm_http_error" in text and "[REDACTED]" in text
    assert API_KEY not in text
    assert API_KEY not in redact(err.value.line())  # what the CLI would print


@pytest.mark.parametrize("line", [
    f"Authorization: Bearer {API_KEY}",
    '{"authorization": "Bearer sk-or-v1-0123456789abcdef0123"}',
    "headers={'Authorization': 'token abcdefghijklmnop1234'}",
    "GET https://bob:hunter2pass@llm.example.org/v1/models",
    "api_key=sk-0123456789abcdefghijklmn&x=1",
    "token hf_abcdefghijklmnopqrstuvwxyz was refused",
])
def test_every_log_line_is_redacted(log_stream, line) -> None:
    get_logger("any.module").warning("event", detail=line, nested={"list": [line]})
    logging.getLogger("httpx").warning("request failed: %s", line)  # stdlib loggers too
    text = log_stream.getvalue()
    assert text.count("[REDACTED]") >= 3, text
    for secret in (API_KEY, "0123456789abcdef0123", "abcdefghijklmnop1234", "hunter2pass",
                   "sk-0123456789abcdefghijklmn", "hf_abcdefghijklmnopqrstuvwxyz"):
        assert secret not in text


def test_ordinary_text_is_left_alone() -> None:
    for text in ("secondary_model.api_key: secrets must come from the environment",
                 "give the key as api_key: ${VAR}, never inside the URL",
                 "llm_open url=http://127.0.0.1:8080/v1 model=smollm2"):
        assert redact(text) == text
