"""Offline extractive summary: no LLM, always fast, always a valid prompt.

Used when the LLM is late, failing or talking nonsense, so the next window starts on time.
It picks the agent's most recent sentences plus a few of the most content-bearing earlier
ones (word-frequency score), what the user said when a transcript has it, the retrieved
memories, and the previous rolling summary, in that priority; ``PromptBudget`` cuts the tail.
"""

from __future__ import annotations

import re
from collections import Counter

from entropi.compaction.template import SECTION_LEADS
from entropi.text.speakable import make_speakable, sentences
from entropi.text.utterance import Utterance

# Lead-ins the compactor writes; stripped when a summary is re-read so they never nest.
RECENT = "Just now you said:"
EARLIER_TALK = "Earlier in this talk:"
USER_SAID = "The user said:"
REMEMBER = "You remember:"
EARLIER = "Earlier:"
# The template's section leads too: a prompt re-read as a summary must not nest "So far: So far:".
LEAD_INS = (RECENT, EARLIER_TALK, USER_SAID, REMEMBER, EARLIER, *SECTION_LEADS)
_LEAD_IN = re.compile("|".join(re.escape(x) for x in LEAD_INS), re.IGNORECASE)

_STOP_WORDS = """a an the and or but so to of in on at for with about from by as is are was
were be been am i you he she it we they me him her us them my your his its our their this that
these those what which who when where how not no yes do does did have has had will would can
could should just very really okay oh well like there here then than too also"""
_STOP = frozenset(_STOP_WORDS.split())
_WORD = re.compile(r"[a-z0-9']+")


def strip_lead_ins(summary: str) -> str:
    return " ".join(_LEAD_IN.sub(" ", summary).split())


def previous_summary(previous_prompt: str, base_persona: str) -> str:
    """The rolling-summary part of an earlier prompt (everything after the persona core)."""
    text = previous_prompt.replace("<system>", " ").strip()
    base = base_persona.strip()
    if base and base in text:
        text = text.replace(base, " ", 1)
    return strip_lead_ins(text)


def _score(sentence: str, freq: Counter[str]) -> float:
    words = [w for w in _WORD.findall(sentence.lower()) if w not in _STOP and len(w) > 2]
    if not words:
        return 0.0
    return sum(freq[w] for w in words) / (len(words) ** 0.5)


def extract(transcript: list[Utterance], recent_n: int = 3, key_n: int = 3) -> list[str]:
    """Prompt parts from one window's transcript, most important first."""
    agent = [s for u in transcript if u.speaker == "agent" and u.text
             for s in sentences(make_speakable(u.text))]
    freq = Counter(w for s in agent for w in _WORD.findall(s.lower())
                   if w not in _STOP and len(w) > 2)
    recent = agent[-recent_n:]
    earlier = agent[:-recent_n] if recent_n else agent
    ranked = sorted(range(len(earlier)), key=lambda i: -_score(earlier[i], freq))[:key_n]
    key = [earlier[i] for i in sorted(ranked)]  # chronological reads better
    parts = []
    if recent:
        parts.append(f"{RECENT} {' '.join(recent)}")
    user_lines = [make_speakable(u.text) for u in transcript if u.speaker == "user" and u.text]
    if user_lines:
        parts.append(f"{USER_SAID} {' '.join(user_lines[-3:])}")
    if key:
        parts.append(f"{EARLIER_TALK} {' '.join(key)}")
    return parts


def fallback_parts(transcript: list[Utterance], memories: str, previous: str) -> list[str]:
    parts = extract(transcript)
    memories = make_speakable(memories) if memories.strip() else ""
    if memories:
        parts.append(f"{REMEMBER} {memories}")
    previous = strip_lead_ins(previous)
    if previous:
        parts.append(f"{EARLIER} {previous}")
    return _dedupe(parts)


def _dedupe(parts: list[str]) -> list[str]:
    """Drop sentences already said in a higher-priority part (summaries overlap)."""
    seen: set[str] = set()
    out = []
    for part in parts:
        lead = next((x for x in LEAD_INS if part.startswith(x)), "")
        kept = []
        for s in sentences(part[len(lead):]):
            key = " ".join(_WORD.findall(s.lower()))
            if key and key not in seen:
                seen.add(key)
                kept.append(s)
        if kept:
            out.append(f"{lead} {' '.join(kept)}".strip())
    return out
