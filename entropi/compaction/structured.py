"""The one structured compaction request per window, and the vetting of its answer.

One JSON object carries everything the window leaves behind: a short speakable ``summary``,
``facts`` (who/what/when), ``commitments`` (who/what/due), ``resolved`` promises, the
``mood`` and a ``profile`` update. Servers that take a JSON schema (llama.cpp turns it into a
grammar; OpenAI/OpenRouter ``response_format``) return valid JSON; others are prompted and
the answer is parsed forgivingly (a prose answer counts as the summary alone).

Nothing in the answer is trusted: every part passes the gates (:mod:`entropi.text.gates`) and
facts, names and notes must be grounded in the window's own words. Rejected parts are
counted and the extractive path stands in for them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from entropi.compaction.template import SECTION_LEADS
from entropi.text.gates import content_words, grounded_reason, name_reason, text_reason
from entropi.text.json_answer import parse_directive
from entropi.text.said import Said
from entropi.text.speakable import make_speakable, sentences

# Length caps keep a grammar-constrained answer well inside max_tokens (a small model fills
# a string up to its cap, and a cut answer is not JSON).
_S = {"type": "string", "maxLength": 90}
_TINY = {"type": "string", "maxLength": 24}
_ITEM_LIST = {"type": "array", "maxItems": 2, "items": {"type": "string", "maxLength": 40}}


def _triples(second: str, third: str) -> dict[str, Any]:
    return {"type": "array", "maxItems": 3, "items": {
        "type": "object", "properties": {"who": _TINY, second: _S, third: _TINY},
        "required": ["who", second]}}


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "maxLength": 220},
        "facts": _triples("what", "when"),
        "commitments": _triples("what", "due"),
        "resolved": {"type": "array", "maxItems": 2, "items": {"type": "string",
                                                                "maxLength": 60}},
        "mood": _TINY,
        "profile": {"type": "object", "properties": {
            "hobbies": _ITEM_LIST, "artistic_tastes": _ITEM_LIST,
            "people": {"type": "array", "maxItems": 2, "items": {
                "type": "object", "properties": {"name": _TINY, "note": _S},
                "required": ["name"]}}}},
    },
    "required": ["summary", "facts", "commitments", "mood"],
}
RESPONSE_FORMAT = {"type": "json_schema",
                   "json_schema": {"name": "compaction", "strict": True, "schema": SCHEMA}}
MAX_TOKENS = 512  # the schema's caps fit in ~400 tokens

SYSTEM = (
    "You keep the memory of {name}, a voice companion, between parts of a long conversation. "
    "Read the new conversation and answer with one JSON object: summary (at most {words} "
    "words to {name} as 'you', plain sentences), facts (who, what, when) and commitments "
    "(who promised what, due when) that were said in the new conversation, resolved (promises "
    "that were kept), mood (one word) and profile (hobbies, artistic_tastes, people with name "
    "and note). Use only what was said. Never invent names."
)
# Request labels a model may echo back; they must never reach a prompt.
LABELS = ("Previous summary:", "Relevant memories:", "Already known:", "New conversation:",
          "Updated summary:", "Conversation:", "Known memories:", *SECTION_LEADS)
_LABEL = re.compile("|".join(re.escape(x) for x in LABELS), re.IGNORECASE)
_AGENT_WHO = re.compile(r"^(?:agent|assistant|you|ai|companion|persona)$", re.IGNORECASE)


@dataclass
class Vetted:
    """What survived the gates; ``rejected`` counts the parts that did not, by reason."""

    summary: str | None = None
    said: list[Said] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    mood: str | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)


def parse_answer(text: str, truncated: bool = False) -> dict[str, Any]:
    """The JSON object, or ``{"summary": text}`` for a server that answered in prose (an
    answer cut by max_tokens loses its half sentence: a half thought misleads the model)."""
    found = parse_directive(text)
    if found is not None:
        return found
    return {"summary": drop_partial_sentence(text) if truncated else text}


def drop_partial_sentence(text: str) -> str:
    text = text.rstrip()
    end = max(text.rfind(". "), text.rfind("! "), text.rfind("? "), text.rfind(".\n"))
    if text[-1:] in ".!?" or end < 0:
        return text
    return text[:end + 1]


def clean_summary(text: str, persona: str) -> str:
    text = make_speakable(_LABEL.sub(" ", make_speakable(text)))
    if persona:
        text = " ".join(text.replace(persona, " ").split())
    return unique_sentences(text)


def unique_sentences(text: str) -> str:
    """Drop sentences that add almost no new words (a looping model's repeats)."""
    seen: set[str] = set()
    kept = []
    for s in sentences(text):
        words = {w.strip(".,!?;:").lower() for w in s.split()} - {""}
        if kept and len(words - seen) < 0.3 * len(words):
            continue
        seen |= words
        kept.append(s)
    return " ".join(kept)


# Words that describe a talk without saying anything from it.
_META_WORDS = """conversation conversations talk talked talking talks discuss discussed
discussing discussion topic topics user assistant thing things chat chatted chatting various
general day today everything something anything nothing stuff mentioned mention shared share
asked ask said told tell spoke speaking speak person people friendly nice good great"""
_META = frozenset(_META_WORDS.split())
MIN_GROUNDED = 2  # distinct words of the window a summary must carry


def content_free_reason(summary: str, window_text: str) -> str | None:
    """A summary that says nothing of the window ("It better.", "The user and the assistant
    had a nice talk about various things."): it would hold the prompt's tokens for nothing."""
    words = content_words(summary) - _META
    if len(words & content_words(window_text)) < MIN_GROUNDED:
        return "content-free"
    return None


class Vetter:
    """Applies the gates to one answer against the window's words."""

    def __init__(self, persona_name: str, persona_core: str) -> None:
        self.name = persona_name
        self.core = persona_core

    def vet(self, answer: dict[str, Any], window_text: str) -> Vetted:
        out = Vetted()
        self._summary(answer.get("summary"), window_text, out)
        for kind, third in (("fact", "when"), ("commitment", "due")):
            for raw in _list(answer.get(f"{kind}s")):
                self._said(kind, raw, third, window_text, out)
        out.resolved = [r for r in _list(answer.get("resolved")) if isinstance(r, str)]
        mood = answer.get("mood")
        if isinstance(mood, str) and re.fullmatch(r"[A-Za-z][a-z\-]{1,19}", mood.strip()):
            out.mood = mood.strip().lower()
        elif mood:
            out.rejected["mood"] += 1
        self._profile(answer.get("profile"), window_text, out)
        return out

    def _reject(self, out: Vetted, why: str) -> None:
        out.rejected[why] += 1

    def _summary(self, raw: Any, window_text: str, out: Vetted) -> None:
        if not isinstance(raw, str) or not raw.strip():
            return self._reject(out, "summary missing")
        text = clean_summary(raw, self.core)
        why = text_reason(text, self.name)
        if why is None and len(text.split()) < 3:
            why = "too short"
        why = why or content_free_reason(text, window_text)
        if why:
            return self._reject(out, why)
        out.summary = text

    def _said(self, kind: str, raw: Any, third: str, window_text: str, out: Vetted) -> None:
        if not isinstance(raw, dict) or not isinstance(raw.get("what"), str):
            return self._reject(out, f"{kind} malformed")
        what = " ".join(raw["what"].split())
        when = raw.get(third) if isinstance(raw.get(third), str) else ""
        if when and when.lower() not in what.lower():
            what = f"{what.rstrip('.')} {when.strip()}"
        text = make_speakable(what)
        why = text_reason(text, self.name) or grounded_reason(text, window_text)
        if why is None and (len(text.split()) < 3 or len(content_words(text)) < 2):
            why = "too short"  # "Lena." is a name, not a fact
        if why:
            return self._reject(out, why)
        who = raw.get("who") if isinstance(raw.get("who"), str) else ""
        out.said.append(Said(kind, text, self._who(who, window_text)))

    def _who(self, who: str, window_text: str) -> str:
        who = who.strip()
        if _AGENT_WHO.match(who) or who == self.name:
            return "agent"
        if who and name_reason(who) is None and who.lower() in window_text.lower():
            return f"user:{who}"
        return "user"

    def _profile(self, raw: Any, window_text: str, out: Vetted) -> None:
        if not isinstance(raw, dict):
            return
        profile: dict[str, Any] = {}
        for key in ("hobbies", "artistic_tastes"):
            kept = []
            for item in _list(raw.get(key)):
                if not isinstance(item, str):
                    continue
                why = text_reason(item, self.name, sentence=False) or grounded_reason(
                    item, window_text, 0.99)
                if why:
                    self._reject(out, why)
                else:
                    kept.append(" ".join(item.split()))
            if kept:
                profile[key] = kept
        people = []
        for p in _list(raw.get("people")):
            name = p.get("name") if isinstance(p, dict) else None
            if not isinstance(name, str):
                continue
            why = name_reason(name) or grounded_reason(name, window_text, 0.99)
            if why:
                self._reject(out, why)
                continue
            if any(x["name"].casefold() == name.strip().casefold() for x in people):
                continue
            note = p.get("note") if isinstance(p.get("note"), str) else ""
            if note and (len(note.split()) < 2 or text_reason(note, self.name, sentence=False)
                         or grounded_reason(note, window_text)):
                self._reject(out, "note rejected")
                note = ""
            people.append({"name": " ".join(name.split()), "notes": [note] if note else []})
        if people:
            profile["people"] = people
        out.profile = profile


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
