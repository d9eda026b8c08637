"""The four prompt requirements, checked the same way in every test."""

from __future__ import annotations

import unicodedata

from entropi.compaction.budget import wrap
from entropi.compaction.compactor import CompactionResult
from entropi.config import Config
from entropi.text.tokenizer import TextTokenizer

_UNSPEAKABLE = set("*#`<>[]{}|_~\"\u201c\u201d\n\t")


def assert_valid_prompt(result: CompactionResult, cfg: Config, tok: TextTokenizer) -> None:
    prompt = result.prompt
    persona = cfg.conversation.base_persona
    # (a) persona core verbatim, once, first
    assert prompt.startswith(persona), prompt
    assert prompt.count(persona) == 1
    # (b) the whole wrapped string fits the budget, counted with the PersonaPlex tokenizer
    assert result.tokens == tok.count(wrap(prompt))
    assert result.tokens <= cfg.conversation.prompt_token_budget == result.token_budget
    # (c) speakable plain text
    assert not _UNSPEAKABLE & set(prompt), prompt
    assert not any(unicodedata.category(ch) == "So" for ch in prompt), prompt
    assert "<system>" not in prompt
    rest = prompt[len(persona):].strip().lower()
    assert not rest.startswith(("sure", "here is", "here's", "okay", "certainly")), prompt
