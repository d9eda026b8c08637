"""Fit a system prompt into the prompt-token budget.

The budget covers the *whole wrapped string* the engine steps through the model,
``<system> {prompt} <system>``, counted with the PersonaPlex tokenizer: that is exactly
what occupies the context (see ``config.context_budget``). The persona core always stays
verbatim; extra parts are added in priority order and the first part that does not fit is
cut at a sentence, then a word, boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from entropi.core.errors import ConfigError
from entropi.text.speakable import sentences

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


class Part:
    """One prompt section: a lead-in, items kept verbatim (whole or not at all), a share."""

    def __init__(self, lead: str, items: Sequence[str], share: float) -> None:
        self.lead = lead
        self.items = [" ".join(i.split()) for i in items if i.strip()]
        self.share = share

    def render(self, n: int) -> str:
        if n <= 0:
            return ""
        return f"{self.lead} {' '.join(self.items[:n])}".strip()


def assemble_shares(budget: PromptBudget, parts: Sequence[Part]) -> str:
    """Persona core whole, then each part up to its share of the spare tokens (so one long
    part never pushes the later ones out), then what is left goes to the parts in order.

    Items are whole sentences or ledger lines: an item that does not fit is skipped, never
    cut, so a fact is either in the prompt verbatim or not at all.
    """
    spare = budget.spare_tokens
    taken = [0] * len(parts)

    def prompt() -> str:
        return " ".join([budget.base, *(p.render(n) for p, n in zip(parts, taken, strict=True)
                                        if n)])

    for i, part in enumerate(parts):  # pass 1: each part within its own share
        allot = int(part.share * spare)
        while taken[i] < len(part.items) and budget.count(part.render(taken[i] + 1)) <= allot:
            taken[i] += 1
    for i, part in enumerate(parts):  # pass 2: the rest, in priority order
        while taken[i] < len(part.items):
            taken[i] += 1
            if not budget.fits(prompt()):
                taken[i] -= 1
                break
    while not budget.fits(prompt()):  # token counts are not quite additive: trim the tail
        last = max(i for i, n in enumerate(taken) if n)
        taken[last] -= 1
    return prompt()
