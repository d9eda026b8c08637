"""The PersonaPlex system prompt, rendered by entropi from a fixed template (never by the LLM).

    {persona core} Open promises: … What you know: … So far: … You remember: …

Priority and share of the spare tokens, in that order: commitments due soon, facts touched
recently, the rolling summary, retrieved memories (see ``assemble_shares``). Ledger lines are
verbatim; the summary and memories are made speakable and deduplicated against the ledger.
"""

from __future__ import annotations

from entropi.llm.budget import Part, PromptBudget, assemble_shares
from entropi.llm.gates import content_words
from entropi.llm.ledger import Ledger
from entropi.llm.speakable import make_speakable, sentences

PROMISES = "Open promises:"
KNOWN = "What you know:"
SO_FAR = "So far:"
MEMORIES = "You remember:"
SECTION_LEADS = (PROMISES, KNOWN, SO_FAR, MEMORIES)
SHARES = {PROMISES: 0.3, KNOWN: 0.3, SO_FAR: 0.25, MEMORIES: 0.15}


def _novel(items: list[str], known: list[set[str]]) -> list[str]:
    """Items not already said by a higher section (retrieval returns ledger facts too)."""
    out = []
    for item in items:
        words = content_words(item)
        if len(words) >= 3 and any(len(words & k) >= 0.7 * len(words) for k in known):
            continue
        known.append(words)
        out.append(item)
    return out


def render_prompt(budget: PromptBudget, ledger: Ledger, summary: str, memories: str) -> str:
    promises = [i.render() for i in ledger.commitments()]
    facts = [i.render() for i in ledger.facts()]
    known = [content_words(x) for x in promises + facts]
    summary_items = _novel(sentences(make_speakable(summary)) if summary.strip() else [], known)
    memory_items = _novel([make_speakable(line) for line in memories.splitlines()
                           if line.strip()], known)
    parts = [Part(PROMISES, promises, SHARES[PROMISES]), Part(KNOWN, facts, SHARES[KNOWN]),
             Part(SO_FAR, summary_items, SHARES[SO_FAR]),
             Part(MEMORIES, memory_items, SHARES[MEMORIES])]
    return assemble_shares(budget, parts)
