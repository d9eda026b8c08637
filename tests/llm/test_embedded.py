"""Against a real llama.cpp server (xllamacpp, SmolLM2-135M-Instruct, 1 thread)."""

from __future__ import annotations

import httpx
import pytest
import structlog

from entropi.config import EmbeddedLLM
from entropi.errors import ConfigError
from entropi.llm import ChatClient, Compactor, open_llm, parse_transcript
from entropi.llm.embedded import EmbeddedServer, default_gguf
from entropi.llm.fallback import previous_summary
from tests.llm.checks import assert_valid_prompt

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
async def test_compaction_with_the_real_model_meets_every_requirement(
        make_cfg, llama_server, tokenizer) -> None:
    cfg = _local(make_cfg, llama_server)
    async with ChatClient(cfg.secondary_model) as client:
        compactor = Compactor(client, cfg, tokenizer.count, deadline_s=DEADLINE)
        first = await compactor.compact(TALK, "The user likes painting.", "")
        later_talk = parse_transcript("agent: Tell me more about your painting class.")
        second = await compactor.compact(later_talk, "", first.prompt)
    for result in (first, second):
        assert result.fallback is None, result  # the LLM answered, in time, with prose
        assert_valid_prompt(result, cfg, tokenizer)
        assert result.summary and result.summary in result.prompt
    # (d) rolling: the second prompt is the persona + the one merged summary (maybe cut to
    # the budget), never the old summary with the new one stacked after it
    persona = cfg.conversation.base_persona
    assert second.summary.startswith(second.prompt[len(persona) + 1:].rstrip("."))
    previous = previous_summary(first.prompt, persona)  # what start() sent as the summary
    previous_line = compactor.messages(later_talk, "", previous)[-1]["content"]
    assert previous_line.count(first.summary) == 1 and persona not in previous_line


@session_loop
async def test_memory_directive_from_the_real_model_is_json(make_cfg, llama_server,
                                                            tokenizer) -> None:
    cfg = _local(make_cfg, llama_server, memory_directive=True)
    async with ChatClient(cfg.secondary_model) as client:
        compactor = Compactor(client, cfg, tokenizer.count, deadline_s=DEADLINE)
        result = await compactor.compact(TALK, "", "")
        await compactor.drain(timeout_s=DEADLINE)
        memories = ([result.memory] if result.memory else []) + compactor.take_memories()
    (memory,) = memories
    # llama.cpp enforces the schema with a grammar: the required keys are there
    assert isinstance(memory["log_memory"], bool) and isinstance(memory["summary"], str)
    assert 0 <= memory["importance"] <= 1


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
