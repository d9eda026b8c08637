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


def test_a_key_echoed_upper_cased_or_percent_escaped_is_redacted(log_stream) -> None:
    from urllib.parse import quote

    from entropi.core.logs import register_secret

    secret = "Zq7pLmN4xR2tY9wK.v/8"  # matches no pattern: only its registration hides it
    register_secret(secret)
    for echo in (secret.upper(), secret.lower(), quote(secret, safe=""),
                 "".join(f"%{ord(c):02x}" for c in secret), quote(quote(secret, safe=""))):
        get_logger("any.module").warning("event", detail=f"server said key={echo}!")
        assert redact(f"<{echo}>") == "<[REDACTED]>", echo
    assert secret.lower()[:10] not in log_stream.getvalue().lower()


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("reply", ["status", "json"])
async def test_an_error_body_echoing_the_request_never_logs_the_conversation(
        make_cfg, fake, log_stream, reply) -> None:
    said = "my sister Margarethe moved to Lisbon last winter"
    sent = [{"role": "system", "content": "You are Ada."}, {"role": "user", "content": said}]
    # The audit's server: a 500 whose body is the request, JSON-escaped; and a 200 whose
    # body is no chat answer but the request again.
    echo = json.dumps({"error": {"message": f"internal error for {json.dumps(sent)}"}})
    fake.script = [Reply("status", 500, body=echo) if reply == "status" else
                   Reply("json", 200, body=json.dumps({"echo": said, "request": sent}))]
    cfg = make_cfg(secondary_model={"backend": "openai", "base_url": fake.base_url,
                                    "max_retries": 0, "stream": False})
    async with ChatClient(cfg.secondary_model) as client:
        with pytest.raises(ChatError) as err:
            await client.complete(sent)
    text = log_stream.getvalue() + err.value.line()
    assert "llm_" in text  # the failure is logged…
    for word in ("Margarethe", "Lisbon", "sister"):
        assert word not in text  # …without the person's words


@pytest.mark.asyncio(loop_scope="session")
async def test_an_error_body_of_its_own_is_still_shown(make_cfg, fake, log_stream) -> None:
    fake.script = [Reply("status", 500, body=json.dumps(
        {"error": {"message": "CUDA out of memory on device 0"}}))]
    cfg = make_cfg(secondary_model={"backend": "openai", "base_url": fake.base_url,
                                    "max_retries": 0})
    async with ChatClient(cfg.secondary_model) as client:
        with pytest.raises(ChatError) as err:
            await client.complete([{"role": "user", "content": "tell me about memory"}])
    assert "CUDA out of memory on device 0" in err.value.line()
