"""Deleting (and showing) what is remembered about one person: ``entropi memory forget`` and
Discord's ``/forget-me`` and ``/what-do-you-know`` share this one path. It covers every file
that holds conversation text: the journal, the profile (the person's row and every free-text
list naming them) and, where given, the session transcript file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from entropi.memory.entry import JournalEntry
from entropi.memory.journal import Journal
from entropi.memory.profile import Person, PersonaProfile, ProfileStore

if TYPE_CHECKING:
    from entropi.memory.transcript_file import TranscriptFile


def person_pattern(name: str) -> re.Pattern[str]:
    """``name`` as a whole word, any case."""
    return re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", re.IGNORECASE)


def text_lists() -> list[str]:
    """Every free-text list of the profile (reflections, hobbies, tastes, any added later):
    a hobby such as "chess with Maria" names a person as surely as a note does."""
    return [name for name, field in PersonaProfile.model_fields.items()
            if field.annotation == list[str]]


def profile_texts(profile: PersonaProfile) -> list[str]:
    return [*(t for field in text_lists() for t in getattr(profile, field)),
            *(n for p in profile.people for n in p.notes)]


@dataclass(frozen=True)
class Known:
    entries: list[JournalEntry]
    person: Person | None
    in_profile: bool  # their row, or a note or list item naming them
    windows: int = 0  # transcript-file windows naming them


def known_about(journal: Journal, store: ProfileStore, name: str,
                transcript: TranscriptFile | None = None) -> Known:
    pattern = person_pattern(name)
    entries = [e for e in journal.read_all() if pattern.search(e.text())]
    profile = store.load()
    in_profile = profile.person(name) is not None or any(
        pattern.search(t) for t in profile_texts(profile))
    windows = (sum(1 for b in transcript.blocks() if pattern.search(b))
               if transcript is not None else 0)
    return Known(entries, profile.person(name), in_profile, windows)


def forget_person(journal: Journal, store: ProfileStore, name: str,
                  in_profile: bool = True, transcript: TranscriptFile | None = None) -> int:
    """Delete every journal entry and transcript window mentioning ``name``, their profile
    row and every profile text naming them; a running daemon reloads (purge stamp).
    Returns the journal entries removed."""
    pattern = person_pattern(name)
    removed = journal.remove(lambda entry: bool(pattern.search(entry.text())))
    if transcript is not None:
        transcript.remove(lambda block: bool(pattern.search(block)))

    def drop(profile: PersonaProfile) -> PersonaProfile:
        key = name.casefold()
        people = [p.model_copy(update={"notes": [n for n in p.notes if not pattern.search(n)]})
                  for p in profile.people if p.name.casefold() != key]
        lists = {field: [t for t in getattr(profile, field) if not pattern.search(t)]
                 for field in text_lists()}
        return profile.model_copy(update={"people": people, **lists})

    if in_profile:
        store.update(drop)
        journal.mark_purged()
    return removed
