"""Facts and commitments from one window's words, chosen by importance (no cue words needed).

Candidates are every sentence the user said (statements *and* requests phrased as questions:
"Could you remind me to pick up the prescription on Thursday?") and every promise by either
speaker. Each is scored by :mod:`entropi.compaction.importance`; what scores below ``KEEP`` is
small talk and never reaches the ledger. The agent's other sentences are not candidates: they
echo or invent, and a fact the user never said is not one. Kept items are stored in a compact
form: discourse fillers stripped ("Oh, well, you know, my blood type is O negative." →
"My blood type is O negative."), or the LLM's grounded, shorter phrasing of the same item.
Markers (``[user spoke 2 s]``) carry no words and give nothing.
"""

from __future__ import annotations

import re
from dataclasses import replace

from entropi.compaction.importance import KEEP, importance, specific_words
from entropi.text.gates import content_words
from entropi.text.said import Said, speaker_of
from entropi.text.speakable import make_speakable, sentences
from entropi.text.utterance import Utterance

_COMMITMENT = re.compile(
    r"\b(i will|i'll|we will|we'll|let's|let us|i promise|promise to|remind me|remind you|"
    r"remind us|nudge me|i'm going to|i am going to|don't let me forget|i plan to|"
    r"i'm planning to|(?:i|we)(?: really| just| still| definitely)? (?:need to|have to|must|"
    r"should|ought to|got to|gotta))\b", re.IGNORECASE)
_MIN_WORDS = 3
_FILLERS = (r"well|so|oh|ah|um+|uh+|er+m?|hmm+|yeah|anyway|actually|basically|honestly|"
            r"you know|i mean|by the way|and|but|also|oh and|and also|oh by the way")
_FILLERS_IF_COMMA = r"yes|no|okay|ok|right|like|you see|listen|look"  # "No satay" stays
# Fillers at the start (repeatedly: "Oh, well, you know, …") and set off by commas inside.
_LEADING = re.compile(rf"^(?:(?:{_FILLERS})\b[,.!]?\s+|(?:{_FILLERS_IF_COMMA})[,.!]\s+)+",
                      re.IGNORECASE)
_INSIDE = re.compile(r",\s*(?:you know|i mean|like|um+|uh+|er+m?|sort of|kind of)\s*,",
                     re.IGNORECASE)
_HESITATION = re.compile(r"\b(?:um+|uh+|er+m?|hmm+)\b[,.]?\s*", re.IGNORECASE)
# A sentence that refers back ("it", "she", "there") means little alone.
_LEANS = re.compile(r"\b(?:it|he|she|they|him|her|them|there|that one)\b", re.IGNORECASE)
SHORTER = 0.5  # content-word overlap at which the LLM's phrasing is the same item


def compact(sentence: str) -> str:
    """The sentence without discourse fillers, capitalised again."""
    s = _INSIDE.sub(",", sentence)
    s = _HESITATION.sub("", s)
    s = _LEADING.sub("", s).strip(" ,")
    return s[:1].upper() + s[1:] if s else s


def extract(transcript: list[Utterance]) -> list[Said]:
    """Facts and commitments worth keeping, in order of appearance; one per sentence, or
    two where the second leans on the first ("… coeliac disease? I was diagnosed with it")."""
    out: list[Said] = []
    for u in transcript:
        if not u.text.strip():
            continue  # a marker: heard, not transcribed
        prev: Said | None = None
        for s in sentences(make_speakable(u.text)):
            s = compact(s)
            if len(s.split()) < _MIN_WORDS:
                prev = None
                continue
            kind = "commitment" if _COMMITMENT.search(s) else "fact"
            if prev is not None and kind == prev.kind == "fact" and _LEANS.search(s):
                if out and out[-1] is prev:
                    out.pop()
                s = f"{prev.text} {s}"
            said = scored(Said(kind, s, speaker_of(u)))
            prev = said
            if said.kind == "fact" and u.speaker == "agent":
                continue  # the agent's statements echo or invent: only its promises count
            if said.importance >= KEEP:
                out.append(said)
    return out


def scored(said: Said) -> Said:
    return replace(said, importance=importance(said.text, said.kind == "commitment"))


def prefer_shorter(extractive: list[Said], llm: list[Said]) -> list[Said]:
    """Each extractive item in the LLM's phrasing where that is the same item, shorter, and
    keeps every name, number and rare word (the LLM's items are already grounded); the LLM's
    other items that matter follow."""
    out, used = [], set()
    for item in extractive:
        words, keep = content_words(item.text), specific_words(item.text)
        better = next((i for i, x in enumerate(llm) if i not in used and x.kind == item.kind
                       and len(x.text) < len(item.text) and keep <= specific_words(x.text)
                       and len(words & content_words(x.text)) >= SHORTER * len(words)), None)
        if better is None:
            out.append(item)
            continue
        used.add(better)
        out.append(replace(item, text=llm[better].text))
    rest = [scored(x) for i, x in enumerate(llm) if i not in used]
    return out + [x for x in rest if x.importance >= KEEP]


def window_words(transcript: list[Utterance]) -> str:
    """Every word said in the window (both speakers, markers stripped): the grounding source."""
    return " ".join(u.text for u in transcript if u.text.strip())
