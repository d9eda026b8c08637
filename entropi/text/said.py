"""Something said that the ledger keeps (a fact or a promise), who said it, and when it is due."""

from __future__ import annotations

import re
from dataclasses import dataclass

from entropi.text.utterance import Utterance

TIME_WORDS = re.compile(r"\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\b|\btomorrow\b|\btonight\b"
                        r"|\bnext (?:week|month|year)\b|\b\d{1,2}(?::\d\d)? ?(?:am|pm)\b",
                        re.IGNORECASE)


@dataclass(frozen=True)
class Said:
    kind: str  # "fact" | "commitment"
    text: str  # verbatim, speakable
    who: str  # "user", "user:<name>" or "agent"
    importance: float = 0.5  # 0..1, set by the compactor's scorer (0.5: not scored)


def speaker_of(u: Utterance) -> str:
    if u.speaker == "agent":
        return "agent"
    return f"user:{u.name}" if u.name else "user"


def due_words(text: str) -> str:
    """The first time expression in a commitment ("Sunday", "6 pm"), or ""."""
    m = TIME_WORDS.search(text)
    return m.group(0) if m else ""
