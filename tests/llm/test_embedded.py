"""Against a real llama.cpp server (xllamacpp, SmolLM2-135M-Instruct, 1 thread)."""

from __future__ import annotations

import httpx
import pytest
import structlog

from entropi.config import EmbeddedLLM
from entropi.core.errors import ConfigError
from entropi.llm.embedded import EmbeddedServer, default_gguf
from entropi.llm.session import open_llm
from entropi.text.utterance import parse_transcript

pytestmark = pytest.mark.llm
session_loop = pytest.mark.asyncio(loop_scope="session")

TALK = parse_transcript("""user: I am planning a trip to the mountains next week with my friend Tom.
agent: That sounds wonderful! Where in the mountains are you going?
[user spoke 2.5 s]
agent: The Alps in spring are beautiful. Remember to pack warm clothes.
agent: I will remind you about the meeting on Friday at nine.""")
# Generous: the point is the LLM path on a shared 2-core box; timing is in `entropi bench`.
DEADLINE = 60.0


def _local(make_cfg, server: EmbeddedServer, **extra):
    return make_cfg(secondary_model={"backend": "openai", "base_url": server.base_url,
                                     "memory_directive": False, **extra})


@session_loop
async def test_open_llm_starts_and_stops_the_embedded_server(make_cfg, tokenizer) -> None:
    cfg = make_cfg(secondary_model={"backend": "embedded", "memory_directive": False,
                                    "max_tokens": 16})
    with structlog.testing.capture_logs() as logs:
        async with open_llm(cfg.secondary_model) as client:
            url = client.base_url
            assert url.startswith("http://127.0.0.1:")  # loopback only
            async with httpx.AsyncClient() as http:
                assert (await http.get(url.removesuffix("/v1") + "/health")).status_code == 200
            reply = await client.complete([{"role": "user", "content": "Say hello."}])
            assert reply.text.strip()
    assert [e["event"] for e in logs if e["event"].startswith("embedded_llm")] == [
        "embedded_llm_ready", "embedded_llm_stopped"]
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):  # stopped cleanly: the port is closed
            await http.get(url.removesuffix("/v1") + "/health")


def test_default_gguf_comes_from_the_wheel_and_bad_paths_are_config_errors(tmp_path) -> None:
    assert default_gguf().name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert default_gguf().stat().st_size > 50_000_000
    with pytest.raises(ConfigError, match=r"secondary_model\.embedded\.gguf: .*not found"):
        EmbeddedServer(EmbeddedLLM(gguf=tmp_path / "nope.gguf"))
