"""Turns one window into a journal entry, or decides it is not worth one.

Each fact or commitment said in the window becomes its own entry (names, dates and
preferences scored up), filed with the window that said it; they skip the cooldown, since a
promise must not be lost because small talk was journaled a minute earlier. A window with no
fact is one entry judged by the importance threshold and the cooldown. ``log_memory: false``
from the LLM still declines, but ``true`` no longer bypasses the threshold (the LLM is not
trusted), and nothing (a summary, a fact, a person) whose names or words are not in the
window's transcript is written. Transcript markers ("[user spoke 2 s]") are stripped first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from entropi.memory import heuristics as h
from entropi.memory.entry import JournalEntry, new_entry_id, normalise_tag, one_line
from entropi.memory.journal_directive import MemoryDirective, validate_directive
from entropi.memory.profile import ProfileUpdate
from entropi.memory.record import WindowRecord
from entropi.text.gates import grounded_reason, name_reason, text_reason


@dataclass(frozen=True)
class Decision:
    entry: JournalEntry | None
    reason: str  # written | declined | below_threshold | cooldown | empty
    profile_update: ProfileUpdate | None = None
    more: tuple[JournalEntry, ...] = ()  # further entries: one per fact or commitment

    @property
    def entries(self) -> list[JournalEntry]:
        return ([self.entry] if self.entry else []) + list(self.more)


_MARKER = re.compile(r"\[[^\]\n]*\bspoke\b[^\]\n]*\]")
# Names, dates, places and preferences are what a companion must not forget.
_SPECIFIC = re.compile(r"\b(?:[A-Z][a-z]{2,})\b|\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\b|"
                       r"\b\d|\b(?:birthday|allergic|favou?rite|love|hate|prefer)\b",
                       re.IGNORECASE)
FACT_BONUS = 0.25


def strip_markers(transcript: str) -> str:
    return " ".join(_MARKER.sub(" ", transcript).split())


def fact_importance(text: str) -> float:
    emotion = h.detect_emotion(text)
    base = h.importance(text, emotion, h.extract_commitments(text), h.detect_topics(text))
    specific = len(_SPECIFIC.findall(text[1:]))  # the first letter is capitalised anyway
    return round(min(1.0, base + FACT_BONUS + 0.05 * min(3, specific)), 2)


def as_utc(ts: datetime) -> datetime:
    """Naive datetimes are taken as local time (what ``datetime.now()`` gives)."""
    return ts.astimezone(UTC)


def build_entry(text: str, persona: str, window: int, ts: datetime,
                directive: MemoryDirective | None = None,
                extra_tags: tuple[str, ...] = ()) -> JournalEntry:
    d = directive or MemoryDirective()
    emotion = normalise_tag(d.emotion or "") or h.detect_emotion(text)
    commitments = [one_line(c) for c in d.commitments if one_line(c)] or \
        h.extract_commitments(text)
    topics = h.detect_topics(text)
    tags = h.auto_tags(topics, emotion, [*extra_tags, *d.tags])
    score = d.importance if d.importance is not None else \
        h.importance(text, emotion, commitments, topics)
    ts = as_utc(ts)
    return JournalEntry(id=new_entry_id(ts), timestamp=ts, persona=persona, window=window,
                        summary=one_line(d.summary or "") or h.summarise(text), emotion=emotion,
                        importance=round(score, 2), tags=tags, commitments=tuple(commitments))


class EntryPlanner:
    def __init__(self, persona: str, threshold: float, cooldown_seconds: float,
                 cooldown_bypass: float) -> None:
        self.persona = persona
        self.threshold = threshold
        self.cooldown_seconds = cooldown_seconds
        self.cooldown_bypass = cooldown_bypass
        self.last_written: datetime | None = None

    def decide(self, record: WindowRecord) -> Decision:
        directive = validate_directive(record.directive, record.window)
        text = strip_markers(record.transcript)
        directive = ground(directive, text, self.persona) if directive else None
        update = directive.profile_update if directive else None
        if update is not None and update.is_empty():
            update = None
        if directive and directive.log_memory is False:
            return Decision(None, "declined", update)
        facts = self._fact_entries(directive, record) if directive else []
        if facts:
            self.last_written = facts[-1].timestamp
            return Decision(facts[0], "written", update, tuple(facts[1:]))
        if not text and not (directive and directive.summary):
            return Decision(None, "empty", update)
        entry = build_entry(text or directive.summary or "", self.persona, record.window,
                            record.ended_at, directive)
        if entry.importance < self.threshold:
            return Decision(None, "below_threshold", update)
        if (entry.importance < self.cooldown_bypass and self.last_written is not None
                and (entry.timestamp - self.last_written).total_seconds()
                < self.cooldown_seconds):
            return Decision(None, "cooldown", update)
        self.last_written = entry.timestamp
        return Decision(entry, "written", update)

    def _fact_entries(self, d: MemoryDirective, record: WindowRecord) -> list[JournalEntry]:
        out = []
        for kind, items in (("commitment", d.commitments), ("fact", d.facts)):
            for item in items:
                entry = build_entry(item, self.persona, record.window, record.ended_at,
                                    MemoryDirective(summary=item, emotion=d.emotion,
                                                    tags=[*d.tags, kind]))
                commitments = (one_line(item),) if kind == "commitment" else ()
                out.append(replace(entry, importance=fact_importance(item),
                                   commitments=commitments))
        return out


def ground(d: MemoryDirective, text: str, persona: str) -> MemoryDirective:
    """Drop every part of a directive that is junk or not in the window's words."""
    def ok(item: str) -> bool:
        return not (text_reason(item, persona, sentence=False) or grounded_reason(item, text))

    update = d.profile_update
    if update is not None:
        people = [p for p in update.people
                  if not name_reason(p.name) and not grounded_reason(p.name, text, 0.99)]
        people = [p.model_copy(update={"notes": [n for n in p.notes if ok(n)]}) for p in people]
        update = update.model_copy(update={
            "people": people, "hobbies": [x for x in update.hobbies if ok(x)],
            "artistic_tastes": [x for x in update.artistic_tastes if ok(x)],
            "reflections": [x for x in update.reflections if ok(x)]})
    # A summary may paraphrase, but every name in it must have been said (or be the persona).
    summary = d.summary if d.summary and not (
        text_reason(d.summary, persona, sentence=False)
        or grounded_reason(d.summary, f"{text} {persona}", 0.0)) else None
    return d.model_copy(update={
        "summary": summary, "profile_update": update,
        "facts": [f for f in d.facts if ok(f)],
        "commitments": [c for c in d.commitments if ok(c)]})
