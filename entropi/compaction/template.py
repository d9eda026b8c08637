"""The PersonaPlex system prompt, rendered by entropi from a fixed template (never by the LLM).

    {persona core} Open promises: … What you know: … So far: … You remember: …

Priority and share of the spare tokens, in that order (see ``assemble_shares``):

- Open promises (20 %): due soonest first, undated ones after;
- What you know (50 %): alternately the most important fact not yet chosen and the fact most
  relevant to the last window's words (BM25; a fact sharing no word is not relevant), so a
  tiny budget holds the top fact of each kind and a large one holds all;
- So far (15 %): the rolling summary; You remember (15 %): retrieved journal memories.

Ledger lines are whole or absent; the summary and memories are made speakable and
deduplicated against the ledger.
"""

from __future__ import annotations

from entropi.compaction.budget import Part, PromptBudget, assemble_shares
from entropi.memory.ledger import Item, Ledger, render_items
from entropi.memory.retrieval import bm25_scores
from entropi.text.gates import content_words
from entropi.text.speakable import make_speakable, sentences

PROMISES = "Open promises:"
KNOWN = "What you know:"
SO_FAR = "So far:"
MEMORIES = "You remember:"
SECTION_LEADS = (PROMISES, KNOWN, SO_FAR, MEMORIES)
SHARES = {PROMISES: 0.2, KNOWN: 0.5, SO_FAR: 0.15, MEMORIES: 0.15}


def _novel(items: list[str], known: list[set[str]]) -> list[str]:
    """Items not already said by a higher section (retrieval returns ledger facts too)."""
    out = []
    for item in items:
        words = {w for w in content_words(item) if not w[0].isdigit()}  # dates of memories
        if len(words) >= 3 and any(len(words & k) >= 0.7 * len(words) for k in known):
            continue
        known.append(words)
        out.append(item)
    return out


def choose_facts(facts: list[Item], recent: str) -> list[Item]:
    """Facts (most important first) reordered: important, relevant, important, relevant …"""
    scores = bm25_scores(recent, [f.text for f in facts]) if recent.strip() else []
    ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    relevant = [facts[i] for i in ranked if scores[i] > 0]
    out: list[Item] = []
    queues = [list(facts), relevant]
    while any(queues):
        for q in queues:
            while q and q[0] in out:
                q.pop(0)
            if q:
                out.append(q.pop(0))
    return out


def render_prompt(budget: PromptBudget, ledger: Ledger, summary: str, memories: str,
                  recent: str = "") -> str:
    """``recent``: the last window's words, which the relevant facts are chosen by."""
    promises = render_items(ledger.commitments())
    facts = render_items(choose_facts(ledger.facts(), recent))
    known = [content_words(x) for x in promises + facts]
    summary_items = _novel(sentences(make_speakable(summary)) if summary.strip() else [], known)
    # Retrieval cuts its last line to its own budget ("…"): a half memory misleads.
    memory_items = _novel([make_speakable(line) for line in memories.splitlines()
                           if line.strip() and not line.rstrip().endswith(("…", "..."))], known)
    parts = [Part(PROMISES, promises, SHARES[PROMISES]), Part(KNOWN, facts, SHARES[KNOWN]),
             Part(SO_FAR, summary_items, SHARES[SO_FAR]),
             Part(MEMORIES, memory_items, SHARES[MEMORIES])]
    return assemble_shares(budget, parts)
