"""Deleting (and showing) what is remembered about one person: ``entropi memory forget`` and
Discord's ``/forget-me`` and ``/what-do-you-know`` share this one path."""

from __future__ import annotations

import re
from dataclasses import dataclass

from entropi.memory.entry import JournalEntry
from entropi.memory.journal import Journal
from entropi.memory.profile import Person, PersonaProfile, ProfileStore


def person_pattern(name: str) -> re.Pattern[str]:
    """``name`` as a whole word, any case."""
    return re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class Known:
    entries: list[JournalEntry]
    person: Person | None
    in_profile: bool  # their row, or a note or reflection naming them


def known_about(journal: Journal, store: ProfileStore, name: str) -> Known:
    pattern = person_pattern(name)
    entries = [e for e in journal.read_all() if pattern.search(e.text())]
    profile = store.load()
    in_profile = profile.person(name) is not None or any(
        pattern.search(t) for t in [*profile.reflections, *(n for p in profile.people
                                                            for n in p.notes)])
    return Known(entries, profile.person(name), in_profile)


def forget_person(journal: Journal, store: ProfileStore, name: str,
                  in_profile: bool = True) -> int:
    """Delete every journal entry mentioning ``name``, their profile row and any note or
    reflection naming them; a running daemon reloads (purge stamp). Returns entries removed."""
    pattern = person_pattern(name)
    removed = journal.remove(lambda entry: bool(pattern.search(entry.text())))

    def drop(profile: PersonaProfile) -> PersonaProfile:
        key = name.casefold()
        people = [p.model_copy(update={"notes": [n for n in p.notes if not pattern.search(n)]})
                  for p in profile.people if p.name.casefold() != key]
        return profile.model_copy(update={
            "people": people,
            "reflections": [r for r in profile.reflections if not pattern.search(r)]})

    if in_profile:
        store.update(drop)
        journal.mark_purged()
    return removed
