"""Small builders shared by the memory tests (real files, no mocks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from entropi.config import MemorySection
from entropi.memory.entry import JournalEntry, new_entry_id

T0 = datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=UTC)


def make_entry(summary: str = "We planned the trip to Lisbon.", *, at: datetime = T0,
               window: int = 1, importance: float = 0.6, tags: tuple[str, ...] = ("planning",),
               commitments: tuple[str, ...] = (), emotion: str = "calm") -> JournalEntry:
    return JournalEntry(id=new_entry_id(at), timestamp=at, persona="Ada", window=window,
                        summary=summary, emotion=emotion, importance=importance,
                        tags=(*tags, f"emotion:{emotion}"), commitments=commitments)


def memory_cfg(tmp: Path, **over) -> MemorySection:
    fields = {"journal_dir": tmp / "journal", "profile_path": tmp / "state" / "persona.json"}
    return MemorySection(**(fields | over))


def later(seconds: float, base: datetime = T0) -> datetime:
    return base + timedelta(seconds=seconds)
