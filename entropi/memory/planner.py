"""Turns one window into a journal entry, or decides it is not worth one.

Order of say: an explicit ``log_memory`` from the LLM wins (true writes, false skips);
otherwise the importance threshold applies, then a cooldown that keeps low-importance
entries at least ``cooldown_seconds`` apart so small talk cannot flood the journal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from entropi.memory import heuristics as h
from entropi.memory.directive import MemoryDirective, validate_directive
from entropi.memory.entry import JournalEntry, new_entry_id, normalise_tag, one_line
from entropi.memory.profile import ProfileUpdate
from entropi.memory.record import WindowRecord


@dataclass(frozen=True)
class Decision:
    entry: JournalEntry | None
    reason: str  # written | declined | below_threshold | cooldown | empty
    profile_update: ProfileUpdate | None = None


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
        update = directive.profile_update if directive else None
        if update is not None and update.is_empty():
            update = None
        if directive and directive.log_memory is False:
            return Decision(None, "declined", update)
        text = " ".join(record.transcript.split())
        if not text and not (directive and directive.summary):
            return Decision(None, "empty", update)
        entry = build_entry(text or directive.summary or "", self.persona, record.window,
                            record.ended_at, directive)
        explicit = bool(directive and directive.log_memory)
        if not explicit:
            if entry.importance < self.threshold:
                return Decision(None, "below_threshold", update)
            if (entry.importance < self.cooldown_bypass and self.last_written is not None
                    and (entry.timestamp - self.last_written).total_seconds()
                    < self.cooldown_seconds):
                return Decision(None, "cooldown", update)
        self.last_written = entry.timestamp
        return Decision(entry, "written", update)
