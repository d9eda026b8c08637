"""The client and compactor against a server that misbehaves on purpose: every case still
ends with a valid prompt within the deadline and logs what went wrong."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
import structlog

from entropi.compaction.compactor import Compactor
from entropi.compaction.fallback import RECENT
from entropi.core.errors import LLMError
from entropi.llm.client import ChatClient, ChatError
from entropi.text.utterance import Utterance, parse_transcript
from tests.llm.checks import assert_valid_prompt
from tests.llm.conftest import API_KEY
from tests.llm.fake_openai import Reply, json_reply, sse_text

pytestmark = pytest.mark.asyncio(loop_scope="session")

TALK = parse_transcript("""user: My sister Maria lives in Lisbon and loves jazz.
agent: Lisbon is lovely, and jazz by the river sounds perfect.
[user spoke 2.0 s]
agent: I will remind you to call Maria on Friday.""")
SUMMARY = "You talked with the user about Maria in Lisbon and promised a Friday reminder."
DEADLINE = 1.5  # seconds; every faulty case must fall back well before a read timeout


def _cfg(make_cfg, fake, **extra):
    sm = {"backend": "openrouter", "base_url": fake.base_url, "model": "meta/llama-3-8b",
          "fallback_models": ["mistral/7b"], "api_key": "${OPENROUTER_API_KEY}",
          "memory_directive": False, "max_retries": 2, "read_timeout_seconds": 10.0,
          "openrouter": {"referer": "https://example.org/entropi", "title": "entropi-test"}}
    sm.update(extra)
    # Room for the ledger (the promise and fact in TALK) and the summary.
    return make_cfg(secondary_model=sm, conversation={"prompt_token_budget": 320})


async def _compact(cfg, tokenizer, transcript=TALK, previous=""):
    client = ChatClient(cfg.secondary_model)
    compactor = Compactor(client, cfg, tokenizer.count, deadline_s=DEADLINE)
    with structlog.testing.capture_logs() as logs:
        try:
            result = await compactor.compact(transcript, "The user paints.", previous)
        finally:
            await compactor.aclose()
            await client.aclose()
    assert_valid_prompt(result, cfg, tokenizer)
    assert API_KEY not in json.dumps(logs, default=str)  # keys are never logged
    return result, logs


def _events(logs, name):
    return [e for e in logs if e["event"] == name]


async def test_streamed_answer_with_sse_comments_and_privacy_fields(make_cfg, fake,
                                                                    tokenizer) -> None:
    fake.script = [Reply(events=sse_text(SUMMARY, comments=True))]
    cfg = _cfg(make_cfg, fake)
    result, _ = await _compact(cfg, tokenizer)
    assert result.fallback is None and result.backend == "openrouter"
    assert result.summary == SUMMARY and f"So far: {SUMMARY}" in result.prompt
    (req,) = fake.requests
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer {API_KEY}"
    assert req.headers["http-referer"] == "https://example.org/entropi"
    assert req.headers["x-openrouter-title"] == "entropi-test"
    assert req.body["provider"] == {"data_collection": "deny", "zdr": True}
    assert req.body["models"] == ["meta/llama-3-8b", "mistral/7b"]
    assert req.body["stream"] is True
    assert "Maria lives in Lisbon" in req.body["messages"][-1]["content"]


async def test_privacy_can_be_relaxed_explicitly_and_local_servers_get_no_provider(
        make_cfg, fake, tokenizer) -> None:
    fake.script = [Reply(events=sse_text(SUMMARY))]
    cfg = _cfg(make_cfg, fake, openrouter={"data_collection": "allow", "zdr": False})
    await _compact(cfg, tokenizer)
    assert fake.requests[-1].body["provider"] == {"data_collection": "allow", "zdr": False}
    local = make_cfg(secondary_model={"backend": "openai", "base_url": fake.base_url,
                                      "memory_directive": False})
    await _compact(local, tokenizer)
    body, headers = fake.requests[-1].body, fake.requests[-1].headers
    assert "provider" not in body and "models" not in body
    assert "authorization" not in headers and "x-openrouter-title" not in headers


async def test_429_with_retry_after_is_retried(make_cfg, fake, tokenizer) -> None:
    fake.script = [Reply("status", 429, headers={"Retry-After": "0.2"}),
                   Reply(events=sse_text(SUMMARY))]
    result, logs = await _compact(_cfg(make_cfg, fake), tokenizer)
    assert result.fallback is None and SUMMARY in result.prompt
    assert len(fake.requests) == 2
    (retry,) = _events(logs, "llm_retry")
    assert retry["status"] == 429 and retry["delay_s"] == 0.2


async def test_retry_after_beyond_the_deadline_falls_back_at_once(make_cfg, fake,
                                                                  tokenizer) -> None:
    fake.script = [Reply("status", 429, headers={"Retry-After": "120"})]
    result, logs = await _compact(_cfg(make_cfg, fake), tokenizer)
    assert result.fallback == "http 429" and len(fake.requests) == 1
    assert _events(logs, "llm_gave_up")[0]["retry_after_s"] == 120
    assert RECENT in result.prompt  # the extractive summary


async def test_503_retries_then_gives_up(make_cfg, fake, tokenizer) -> None:
    fake.script = [Reply("status", 503, headers={"Retry-After": "0"})]
    result, logs = await _compact(_cfg(make_cfg, fake, max_retries=2), tokenizer)
    assert result.fallback == "http 503" and len(fake.requests) == 3
    assert len(_events(logs, "llm_retry")) == 2


async def test_500_is_not_retried(make_cfg, fake, tokenizer) -> None:
    fake.script = [Reply("status", 500)]
    result, logs = await _compact(_cfg(make_cfg, fake), tokenizer)
    assert result.fallback == "http 500" and len(fake.requests) == 1
    assert _events(logs, "compaction_fallback")[0]["reason"] == "http 500"
    assert _events(logs, "llm_http_error")[0]["status"] == 500


@pytest.mark.parametrize(("status", "words"), [(402, "out of credits (402)"),
                                               (401, "invalid or missing API key (401)"),
                                               (404, "not found (404)"), (400, "(400)")])
async def test_fatal_statuses_are_clear_and_not_retried(make_cfg, fake, tokenizer, status,
                                                        words) -> None:
    fake.script = [Reply("status", status)]
    cfg = _cfg(make_cfg, fake)
    result, logs = await _compact(cfg, tokenizer)
    assert result.fallback == f"http {status}" and len(fake.requests) == 1
    said = "llm_refused" if status in (401, 402) else "llm_http_error"  # said once, loudly
    assert _events(logs, said)[0]["status"] == status
    async with ChatClient(cfg.secondary_model) as client:
        with pytest.raises(ChatError) as err:
            await client.complete([{"role": "user", "content": "hi"}])
    assert err.value.fatal and isinstance(err.value, LLMError)
    assert err.value.message.startswith(f"OpenRouter: {words}") if status == 402 else (
        words in err.value.message)


async def test_hanging_server_times_out_and_the_late_answer_is_used_next(
        make_cfg, fake, tokenizer) -> None:
    late = "You heard that Maria lives in Lisbon and loves jazz."
    fake.script = [Reply(events=sse_text(late), delay_s=DEADLINE + 0.5),
                   Reply(events=sse_text(SUMMARY))]
    cfg = _cfg(make_cfg, fake)
    client = ChatClient(cfg.secondary_model)
    compactor = Compactor(client, cfg, tokenizer.count, deadline_s=DEADLINE)
    with structlog.testing.capture_logs() as logs:
        first = await compactor.compact(TALK, "", "")
        await compactor.drain(timeout_s=10)
        second = await compactor.compact(TALK, "", first.prompt)
    await client.aclose()
    assert first.fallback == "timeout" and second.fallback is None
    assert_valid_prompt(first, cfg, tokenizer)
    assert _events(logs, "late_answer_kept")
    # the late summary, not the fallback prompt, became the "previous summary"
    asked = fake.requests[1].body["messages"][-1]["content"]
    assert f"Previous summary: {late}" in asked and RECENT not in asked


async def test_server_that_never_answers(make_cfg, fake, tokenizer) -> None:
    fake.script = [Reply("hang")]
    result, logs = await _compact(_cfg(make_cfg, fake), tokenizer)
    assert result.fallback == "timeout"
    assert _events(logs, "compaction_fallback")[0]["reason"] == "timeout"


async def test_error_inside_a_200_stream(make_cfg, fake, tokenizer) -> None:
    events = sse_text("You talked about")[:2]
    events += ['data: {"error": {"code": 502, "message": "provider went away"}}', ""]
    fake.script = [Reply(events=events)]
    result, logs = await _compact(_cfg(make_cfg, fake), tokenizer)
    assert result.fallback == "stream error"
    assert "provider went away" in _events(logs, "llm_stream_error")[0]["detail"]


@pytest.mark.parametrize("reply", [Reply("json", body="<html>not json</html>"),
                                   Reply(events=["data: {broken", ""])])
async def test_invalid_json(make_cfg, fake, tokenizer, reply) -> None:
    fake.script = [reply]
    result, logs = await _compact(_cfg(make_cfg, fake, stream=reply.kind == "sse"), tokenizer)
    assert result.fallback == "invalid json"
    assert _events(logs, "llm_invalid_json")


async def test_ten_thousand_token_answer_is_cut(make_cfg, fake, tokenizer) -> None:
    rng = random.Random(7)
    vocab = [f"{a}{b}" for a in ("sun", "rain", "tree", "song", "book") for b in range(40)]
    words = [rng.choice(vocab) for _ in range(10_000)]
    text = "Maria lives in Lisbon. " + " ".join(
        " ".join(words[i:i + 8]) + "." for i in range(0, len(words), 8))
    fake.script = [Reply(events=sse_text(text, chunk_words=2))]  # 10,000+ words
    result, logs = await _compact(_cfg(make_cfg, fake), tokenizer)
    assert result.fallback is None
    assert result.summary.startswith("Maria lives in Lisbon.")  # grounded: not content-free
    assert _events(logs, "llm_answer_truncated")


async def test_markdown_with_preamble_is_made_speakable(make_cfg, fake, tokenizer) -> None:
    text = ("Sure! Here's the updated summary:\n\n## Summary\n- The user **loves** jazz "
            "\U0001f3b7\n- You promised to call *Maria* on Friday.\n\nHope this helps!")
    fake.script = [json_reply(text)]
    result, _ = await _compact(_cfg(make_cfg, fake, stream=False), tokenizer)
    assert result.fallback is None
    assert result.summary == "The user loves jazz. You promised to call Maria on Friday."


async def test_garbage_answer_falls_back(make_cfg, fake, tokenizer) -> None:
    fake.script = [json_reply("!!! ??? 123 456 ...")]
    result, logs = await _compact(_cfg(make_cfg, fake, stream=False), tokenizer)
    assert result.fallback == "garbage" and _events(logs, "llm_garbage")


async def test_unreachable_server(make_cfg, fake, tokenizer) -> None:
    cfg = _cfg(make_cfg, fake, base_url="http://127.0.0.1:9/v1")  # discard port: refused
    result, logs = await _compact(cfg, tokenizer)
    assert result.fallback == "unreachable" and _events(logs, "llm_unreachable")


async def test_speculative_start_adds_what_was_said_after_it(make_cfg, fake,
                                                             tokenizer) -> None:
    fake.script = [Reply(events=sse_text(SUMMARY))]
    cfg = _cfg(make_cfg, fake)
    async with ChatClient(cfg.secondary_model) as client:
        compactor = Compactor(client, cfg, tokenizer.count, deadline_s=DEADLINE)
        task = compactor.start(TALK[:2], "", "")  # before the window ended
        full = [*TALK, Utterance("agent", "See you tomorrow.")]
        result = await compactor.finish(task, full)
    assert result.fallback is None
    # the promise said after the start is in the ledger, the rest is "just now"
    assert SUMMARY in result.prompt and result.prompt.endswith("See you tomorrow.")
    assert "Open promises: You said: I will remind you to call Maria on Friday." in result.prompt
    assert "call Maria on Friday" not in fake.requests[0].body["messages"][-1]["content"]


async def test_one_structured_request_per_window_and_its_memory_is_gated(make_cfg, fake,
                                                                        tokenizer) -> None:
    answer = {"summary": "You talked about Maria in Lisbon.", "mood": "happy",
              "facts": [{"who": "user", "what": "Maria lives in Lisbon"},
                        {"who": "user", "what": "Sarah works at the bank"}],  # invented
              "commitments": [{"who": "agent", "what": "call Maria", "due": "Friday"}],
              "profile": {"hobbies": ["jazz"],
                          "people": [{"name": "I'm happy to help you.", "note": "x"},
                                     {"name": "Maria", "note": "lives in Lisbon"}]}}
    fake.script = [json_reply(f"```json\n{json.dumps(answer)}\n```")]
    cfg = _cfg(make_cfg, fake, memory_directive=True, stream=False)
    async with ChatClient(cfg.secondary_model) as client:
        compactor = Compactor(client, cfg, tokenizer.count, deadline_s=DEADLINE)
        result = await compactor.compact(TALK, "", "")
    (req,) = fake.requests  # one request: summary, ledger and memory together
    assert req.body["response_format"]["type"] == "json_schema"
    memory = result.memory
    assert memory["emotion"] == "happy"
    assert "Maria lives in Lisbon." in memory["facts"]
    assert not any("Sarah" in f for f in memory["facts"])  # not said: never written
    assert memory["profile_update"] == {"hobbies": ["jazz"], "people": [
        {"name": "Maria", "notes": ["lives in Lisbon"]}]}
    assert result.rejected == {"not in the window": 1, "not a name": 1}


async def test_openrouter_without_key_is_a_clear_error(make_cfg, fake, monkeypatch) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    cfg = make_cfg(secondary_model={"backend": "openrouter"})
    with pytest.raises(LLMError, match="OPENROUTER_API_KEY"):
        ChatClient(cfg.secondary_model)


async def test_looping_answer_keeps_its_useful_sentences(make_cfg, fake, tokenizer) -> None:
    fake.script = [json_reply("You met Tom. " * 30 + "You talked about jazz in Lisbon.")]
    result, _ = await _compact(_cfg(make_cfg, fake, stream=False), tokenizer)
    assert result.fallback is None
    assert result.summary == "You met Tom. You talked about jazz in Lisbon."


async def test_answer_cut_by_max_tokens_loses_its_half_sentence(make_cfg, fake,
                                                                tokenizer) -> None:
    fake.script = [Reply(events=sse_text(f"{SUMMARY} Then you both laughed ab",
                                         finish="length"))]
    result, _ = await _compact(_cfg(make_cfg, fake), tokenizer)
    assert result.fallback is None and result.summary == SUMMARY


async def test_discarded_speculation_is_cancelled_and_hands_back_the_late_answer(
        make_cfg, fake, tokenizer) -> None:
    """A pause that turned out not to be one: the stale request stops, nothing is lost."""
    late = "You heard that Maria lives in Lisbon and loves jazz."
    fake.script = [Reply(events=sse_text(late), delay_s=DEADLINE + 0.5),
                   Reply(events=sse_text(SUMMARY), delay_s=5.0),  # the stale speculation
                   Reply(events=sse_text(SUMMARY))]
    cfg = _cfg(make_cfg, fake)
    async with ChatClient(cfg.secondary_model) as client:
        compactor = Compactor(client, cfg, tokenizer.count, deadline_s=DEADLINE)
        first = await compactor.compact(TALK, "", "")
        await compactor.drain(timeout_s=10)  # the late answer is now kept
        stale = compactor.start(TALK[:1], "", first.prompt)  # takes the late answer...
        await asyncio.sleep(0.2)
        compactor.discard(stale)  # ...and gives it back when the talk resumes
        await asyncio.gather(stale, return_exceptions=True)
        assert stale.cancelled()
        result = await compactor.compact(TALK, "", first.prompt)
    assert result.fallback is None and SUMMARY in result.prompt
    asked = fake.requests[-1].body["messages"][-1]["content"]
    assert f"Previous summary: {late}" in asked


async def test_speculative_start_keeps_words_added_to_an_open_utterance(make_cfg, fake,
                                                                        tokenizer) -> None:
    """The agent was mid-sentence at the speculative start: the rest of it is not lost."""
    fake.script = [Reply(events=sse_text(SUMMARY))]
    cfg = _cfg(make_cfg, fake)
    async with ChatClient(cfg.secondary_model) as client:
        compactor = Compactor(client, cfg, tokenizer.count, deadline_s=DEADLINE)
        task = compactor.start([*TALK[:1], Utterance("agent", "I will remind")], "", "")
        full = [*TALK[:1], Utterance("agent", "I will remind you on Friday."),
                Utterance("user", "", seconds=1.2), Utterance("agent", "Sleep well.")]
        result = await compactor.finish(task, full)
    assert result.prompt.endswith(f"{RECENT} You on Friday. Sleep well.")  # capitalised
