"""A server that answers too much, too little or "no" forever: every body is read bounded,
text work stays off the event loop, a cut stream is a failure, and a refusal is said once."""

from __future__ import annotations

import asyncio
import threading
import tracemalloc

import pytest
import structlog

from entropi.compaction import compactor as compactor_module
from entropi.compaction.compactor import Compactor
from entropi.llm.client import ChatClient, ChatError
from tests.llm.checks import assert_valid_prompt
from tests.llm.fake_openai import Reply, sse_cut, sse_text
from tests.llm.test_faults import DEADLINE, SUMMARY, TALK, _cfg, _compact, _events

pytestmark = pytest.mark.asyncio(loop_scope="session")

MB = 1 << 20


async def _compact_peak(cfg, tokenizer):
    """One compaction; also the peak of Python heap allocations while it ran."""
    tracemalloc.start()
    try:
        result, logs = await _compact(cfg, tokenizer)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, logs, peak


@pytest.mark.parametrize(("status", "size", "reason"), [
    (200, 5 * MB, "too large"),  # a 5 MB non-streamed answer
    (500, 50 * MB, "http 500"),  # a 50 MB error body
])
async def test_huge_bodies_are_cut_off_and_memory_stays_bounded(make_cfg, fake, tokenizer,
                                                                status, size, reason) -> None:
    fake.script = [Reply("flood", status, size=size)]
    cfg = _cfg(make_cfg, fake, stream=False)
    result, logs, peak = await _compact_peak(cfg, tokenizer)
    assert result.fallback == reason and len(fake.requests) == 1
    # Whole bodies would be ≥ size twice over (bytes, then text); a bounded read is < 2 MB.
    assert peak < 2 * MB, peak
    assert fake.flood_sent < size  # we hung up: the server could not write it all
    if status == 200:
        (event,) = _events(logs, "llm_answer_too_large")
        assert event["limit_bytes"] < MB
    else:
        (event,) = _events(logs, "llm_http_error")
        assert len(event["detail"]) <= 160


async def test_newline_free_stream_is_bounded_too(make_cfg, fake, tokenizer) -> None:
    fake.script = [Reply("flood", 200, size=3 * MB)]  # read as SSE: one endless "line"
    result, _, peak = await _compact_peak(_cfg(make_cfg, fake), tokenizer)
    assert result.fallback == "too large" and peak < 2 * MB, peak


async def test_stream_closed_mid_answer_is_a_failure_not_a_summary(make_cfg, fake,
                                                                   tokenizer) -> None:
    fake.script = [Reply(events=sse_cut(SUMMARY))]
    result, logs = await _compact(_cfg(make_cfg, fake), tokenizer)
    assert result.fallback == "stream cut"
    assert SUMMARY not in result.prompt  # the half answer is not taken as the summary
    assert len(_events(logs, "llm_stream_cut")) == 1


@pytest.mark.parametrize("status", [401, 402])
async def test_refusal_is_said_once_then_no_more_requests_until_the_config_changes(
        make_cfg, fake, tokenizer, status) -> None:
    fake.script = [Reply("status", status)]
    cfg = _cfg(make_cfg, fake)
    all_logs = []
    for _ in range(3):  # three windows, and a fresh client each time (as after a restart)
        result, logs = await _compact(cfg, tokenizer)
        assert result.fallback == f"http {status}"
        all_logs += logs
    assert len(fake.requests) == 1
    (said,) = _events(all_logs, "llm_refused")
    assert said["status"] == status and "until the config changes" in said["action"]
    assert not _events(all_logs, "llm_http_error")
    # Requests already in flight together (summary + memory directive) say it once too.
    other = _cfg(make_cfg, fake, model="third/model")
    async with ChatClient(other.secondary_model) as client:
        with structlog.testing.capture_logs() as logs:
            results = await asyncio.gather(
                *(client.complete([{"role": "user", "content": "hi"}]) for _ in range(3)),
                return_exceptions=True)
    assert all(isinstance(r, ChatError) for r in results)
    assert len(_events(logs, "llm_refused")) == 1
    # Another model (or key, or server) is another config: it gets asked again.
    await _compact(_cfg(make_cfg, fake, model="other/model"), tokenizer)
    assert len(fake.requests) == 5


async def test_answer_text_is_cleaned_in_a_thread_not_on_the_event_loop(
        make_cfg, fake, tokenizer, monkeypatch) -> None:
    seen: list[int] = []
    real = compactor_module.parse_answer  # parsing + cleaning of the answer's text

    def spy(text: str, **kw):
        seen.append(threading.get_ident())
        return real(text, **kw)

    monkeypatch.setattr(compactor_module, "parse_answer", spy)
    rendered: list[int] = []  # the gates, ledger merge and prompt rendering come after it
    real_render = compactor_module.render_prompt

    def render_spy(*args, **kw):
        rendered.append(threading.get_ident())
        return real_render(*args, **kw)

    monkeypatch.setattr(compactor_module, "render_prompt", render_spy)
    fake.script = [Reply(events=sse_text(SUMMARY))]
    cfg = _cfg(make_cfg, fake)
    client = ChatClient(cfg.secondary_model)
    compactor = Compactor(client, cfg, tokenizer.count, deadline_s=DEADLINE)
    with structlog.testing.capture_logs():
        try:
            result = await compactor.compact(TALK, "", "")
        finally:
            await compactor.aclose()
            await client.aclose()
    assert_valid_prompt(result, cfg, tokenizer)
    assert result.fallback is None and SUMMARY in result.prompt
    assert seen and threading.main_thread().ident not in seen[:1]
    assert rendered and threading.main_thread().ident not in rendered
