"""Pure-text parts of compaction: speakable cleanup, transcripts, budget, fallback, JSON."""

from __future__ import annotations

import pytest

from entropi.compaction.budget import PromptBudget, wrap
from entropi.compaction.compactor import Compactor
from entropi.compaction.fallback import EARLIER, RECENT
from entropi.core.errors import ConfigError, InputError
from entropi.text.json_answer import parse_directive
from entropi.text.speakable import garbage_reason, make_speakable
from entropi.text.utterance import Utterance, load_transcript, parse_transcript
from tests.llm.checks import assert_valid_prompt

CHATTY = (
    "Sure! Here is the updated system prompt:\n\n## Summary\n"
    "- The user **loves** jazz \U0001f3b7 and [painting](https://x.y).\n"
    "- You promised to call \u201cMaria\u201d on Friday \U0001f44d\U0001f3fd.\n"
    "<system> `code` </system>\n\nLet me know if you need anything else!"
)


def test_make_speakable_strips_preamble_markdown_quotes_emojis_tags() -> None:
    out = make_speakable(CHATTY)
    assert out == "The user loves jazz and painting. You promised to call Maria on Friday. Code."
    assert make_speakable("Okay, so the user's sister is nice") == "So the user's sister is nice."
    echoed = "User: I adopted a cat. agent: Lovely! [user spoke 1.5 s]. {x} Done"
    assert make_speakable(echoed) == "The user said, I adopted a cat. You said, Lovely! Done."


def test_garbage_reasons() -> None:
    assert garbage_reason("ok.") == "too short"
    assert garbage_reason("12 34 56 78 90 !! ??") == "not prose"
    assert garbage_reason(" ".join(["again"] * 20)) == "repetitive"
    assert garbage_reason("You talked about the trip to Lisbon.") is None


def test_parse_transcript_prefixes_markers_and_errors(tmp_path) -> None:
    text = "user: hi there\nAgent: Hello!\n\n[user spoke 3.1 s]\nplain agent line\nuser:\n"
    assert parse_transcript(text) == [
        Utterance("user", "hi there"), Utterance("agent", "Hello!"),
        Utterance("user", "", 3.1), Utterance("agent", "plain agent line")]
    assert Utterance("user", "", 3.1).render() == "[user spoke 3.1 s]"
    with pytest.raises(InputError, match="empty"):
        parse_transcript("\n  \n", source="t.txt")
    with pytest.raises(InputError, match="no such transcript"):
        load_transcript(tmp_path / "missing.txt")


def test_parse_directive_is_forgiving_and_safe() -> None:
    assert parse_directive('{"log_memory": true, "summary": "x"}') == {
        "log_memory": True, "summary": "x"}
    fenced = 'Here you go:\n```json\n{"importance": 0.5}\n```'
    assert parse_directive(fenced) == {"importance": 0.5}
    assert parse_directive('noise {broken {"tags": ["a"]} tail') == {"tags": ["a"]}
    assert parse_directive("[1, 2]") is None
    assert parse_directive("no json at all") is None


def test_budget_counts_the_wrapped_prompt_and_cuts_at_boundaries(tokenizer) -> None:
    persona = "You are Ada."
    budget = PromptBudget(persona, tokenizer.count(wrap(persona)) + 40, tokenizer.count)
    long = " ".join(f"Sentence number {i} talks about the mountains." for i in range(50))
    prompt = budget.assemble([long, "Never reached."])
    assert prompt.startswith(persona + " Sentence number 0")
    assert tokenizer.count(wrap(prompt)) <= budget.budget
    assert "Never reached" not in prompt
    assert prompt.endswith(".")


def test_persona_over_budget_is_a_config_error(make_cfg, tokenizer) -> None:
    cfg = make_cfg(conversation={"prompt_token_budget": 20})
    with pytest.raises(ConfigError, match=r"conversation\.base_persona.*prompt_token_budget 20"):
        Compactor(None, cfg, tokenizer.count)


TALK = parse_transcript("""user: I am planning a trip to the mountains next week with Tom.
agent: That sounds wonderful, where in the mountains are you going?
[user spoke 2.5 s]
agent: The Alps in spring are beautiful. Remember to pack warm clothes.
agent: I will remind you about the meeting on Friday at nine.""")


@pytest.mark.asyncio(loop_scope="session")
async def test_offline_fallback_is_valid_and_rolls_instead_of_stacking(make_cfg,
                                                                        tokenizer) -> None:
    cfg = make_cfg(conversation={"prompt_token_budget": 400})  # room for the rolling part
    compactor = Compactor(None, cfg, tokenizer.count)
    previous = ""
    for i in range(8):
        talk = [*TALK, Utterance("agent", f"Window {i} was about topic number {i}.")]
        result = await compactor.compact(talk, "The user likes painting.", previous)
        assert result.fallback == "offline" and result.backend == "offline"
        assert_valid_prompt(result, cfg, tokenizer)
        assert f"topic number {i}" in result.prompt  # the newest window always survives
        assert f"{EARLIER} {EARLIER}" not in result.prompt and result.prompt.count(RECENT) == 1
        # the promise lives in the ledger: in every prompt, verbatim, once
        assert result.prompt.count("I will remind you about the meeting on Friday at nine.") == 1
        previous = result.prompt
    assert "topic number 0" not in previous  # old windows roll off, they do not pile up
