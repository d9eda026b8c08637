"""Fit a system prompt into the prompt-token budget.

The budget covers the *whole wrapped string* the engine steps through the model,
``<system> {prompt} <system>``, counted with the PersonaPlex tokenizer: that is exactly
what occupies the context (see ``config.context_budget``). The persona core always stays
verbatim; extra parts are added in priority order and the first part that does not fit is
cut at a sentence, then a word, boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from entropi.errors import ConfigError
from entropi.llm.speakable import sentences

CountTokens = Callable[[str], int]


def wrap(prompt: str) -> str:
    """The string the engine primes the model with (facts file: text prompt phase)."""
    return f"<system> {prompt} <system>"


class PromptBudget:
    def __init__(self, base_persona: str, budget: int, count_tokens: CountTokens) -> None:
        self.base = base_persona.strip()
        self.budget = budget
        self.count = count_tokens
        base_tokens = self.tokens(self.base)
        if base_tokens > budget:
            raise ConfigError(
                f"conversation.base_persona: {base_tokens} tokens (wrapped in <system> tags) "
                f"exceed conversation.prompt_token_budget {budget}; raise the budget or "
                "shorten the persona")

    def tokens(self, prompt: str) -> int:
        return self.count(wrap(prompt))

    def fits(self, prompt: str) -> bool:
        return self.tokens(prompt) <= self.budget

    @property
    def spare_tokens(self) -> int:
        """Tokens left for everything after the persona core."""
        return self.budget - self.tokens(self.base)

    def assemble(self, parts: Sequence[str]) -> str:
        """Persona core + as many parts (priority order) as fit, the last one cut to fit."""
        prompt = self.base
        for part in (p.strip() for p in parts):
            if not part:
                continue
            candidate = f"{prompt} {part}"
            if self.fits(candidate):
                prompt = candidate
                continue
            return self._cut_into(prompt, part)
        return prompt

    def _cut_into(self, prompt: str, part: str) -> str:
        kept = prompt
        for sentence in sentences(part):
            candidate = f"{kept} {sentence}"
            if not self.fits(candidate):
                return self._cut_words(kept, sentence)
            kept = candidate
        return kept

    def _cut_words(self, prompt: str, sentence: str) -> str:
        """Longest word prefix of ``sentence`` that fits (binary search: counts are monotone
        enough in practice and this runs on every window)."""
        words = sentence.split()
        lo, hi = 0, len(words)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.fits(f"{prompt} {' '.join(words[:mid])}."):
                lo = mid
            else:
                hi = mid - 1
        if lo < 3:  # a two-word scrap is noise to the model, not context
            return prompt
        cut = " ".join(words[:lo]).rstrip(",;:")
        return f"{prompt} {cut}." if cut[-1] not in ".!?" else f"{prompt} {cut}"
