"""``persona_state.json``: the persona's medium-term self (reflections, hobbies, tastes, people).

Updates come from the LLM's memory directive; they are validated against
:class:`ProfileUpdate` and merged (lists deduplicated case-insensitively, newest kept,
sizes capped). The file is validated on load, and an invalid file is reported with its
line, never overwritten.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from entropi.core.crypto import Cipher
from entropi.core.errors import MemoryFileError
from entropi.memory.entry import one_line
from entropi.memory.store import EncryptedJsonFile

# Caps keep the profile (and its prompt snapshot) small however long the persona lives.
MAX_REFLECTIONS = 20
MAX_ITEMS = 30
MAX_PEOPLE = 50
MAX_NOTES = 10
MAX_TEXT = 200
# Relationship sentiment moves half-way towards each new reading: one bad exchange
# cools a friendship, it does not end it.
SENTIMENT_BLEND = 0.5

Text = Field(min_length=1, max_length=MAX_TEXT)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Person(_Strict):
    name: str = Field(min_length=1, max_length=64)
    sentiment: float = Field(0.0, ge=-1, le=1)
    notes: list[str] = Field(default_factory=list, max_length=MAX_NOTES)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    times_talked: int = Field(0, ge=0)  # windows they spoke in (Discord roster)


class PersonaProfile(_Strict):
    version: int = 1
    persona: str = ""
    updated_at: datetime | None = None
    reflections: list[str] = Field(default_factory=list, max_length=MAX_REFLECTIONS)
    hobbies: list[str] = Field(default_factory=list, max_length=MAX_ITEMS)
    artistic_tastes: list[str] = Field(default_factory=list, max_length=MAX_ITEMS)
    people: list[Person] = Field(default_factory=list, max_length=MAX_PEOPLE)

    def person(self, name: str) -> Person | None:
        key = name.strip().casefold()
        return next((p for p in self.people if p.name.casefold() == key), None)

    def snapshot(self) -> str:
        """One condensed line for the compaction prompt (empty when nothing is known)."""
        parts = []
        if self.hobbies:
            parts.append("hobbies: " + ", ".join(self.hobbies[-5:]))
        if self.artistic_tastes:
            parts.append("tastes: " + ", ".join(self.artistic_tastes[-5:]))
        if self.people:
            people = sorted(self.people, key=lambda p: p.last_seen or datetime.min.replace(
                tzinfo=UTC), reverse=True)[:5]
            parts.append("people: " + ", ".join(
                f"{p.name} ({p.sentiment:+.1f}{'; ' + p.notes[-1] if p.notes else ''})"
                for p in people))
        if self.reflections:
            parts.append("reflections: " + "; ".join(self.reflections[-3:]))
        return "; ".join(parts)


class PersonUpdate(BaseModel):  # extra keys from the LLM are ignored, like ProfileUpdate
    name: str = Field(min_length=1, max_length=64)
    sentiment: float | None = Field(None, ge=-1, le=1)
    notes: list[str] = Field(default_factory=list, max_length=MAX_NOTES)


class ProfileUpdate(BaseModel):
    """What the LLM may send; extra keys are ignored, wrong types make it invalid."""

    reflections: list[str] = Field(default_factory=list, max_length=MAX_REFLECTIONS)
    hobbies: list[str] = Field(default_factory=list, max_length=MAX_ITEMS)
    artistic_tastes: list[str] = Field(default_factory=list, max_length=MAX_ITEMS)
    people: list[PersonUpdate] = Field(default_factory=list, max_length=MAX_PEOPLE)
    # Set by the daemon, not the LLM: opted-in people heard talking in one window.
    talked: list[str] = Field(default_factory=list, max_length=MAX_PEOPLE, exclude=True)

    @field_validator("reflections", "hobbies", "artistic_tastes")
    @classmethod
    def _texts(cls, items: list[str]) -> list[str]:
        out = [one_line(i) for i in items]
        if any(not i or len(i) > MAX_TEXT for i in out):
            raise ValueError(f"items must be 1..{MAX_TEXT} characters")
        return out

    def is_empty(self) -> bool:
        return not (self.reflections or self.hobbies or self.artistic_tastes or self.people
                    or self.talked)


def merge_list(old: list[str], new: list[str], cap: int) -> list[str]:
    """Dedupe case-insensitively; a repeated item moves to the end (most recent); keep
    the newest ``cap``."""
    out = list(old)
    for item in new:
        item = one_line(item)[:MAX_TEXT]
        if not item:
            continue
        out = [o for o in out if o.casefold() != item.casefold()]
        out.append(item)
    return out[-cap:]


def merge(profile: PersonaProfile, update: ProfileUpdate, now: datetime) -> PersonaProfile:
    people = [p.model_copy() for p in profile.people]
    for pu in update.people:
        name = one_line(pu.name)
        current = next((p for p in people if p.name.casefold() == name.casefold()), None)
        if current is None:
            current = Person(name=name, sentiment=pu.sentiment or 0.0, first_seen=now)
            people.append(current)
        elif pu.sentiment is not None:
            blended = (1 - SENTIMENT_BLEND) * current.sentiment + SENTIMENT_BLEND * pu.sentiment
            current = current.model_copy(update={"sentiment": round(blended, 3)})
        current = current.model_copy(update={
            "notes": merge_list(current.notes, pu.notes, MAX_NOTES), "last_seen": now})
        people = [p for p in people if p.name.casefold() != name.casefold()] + [current]
    for name in update.talked:
        name = one_line(name)[:64]
        current = next((p for p in people if p.name.casefold() == name.casefold()), None) \
            or Person(name=name, first_seen=now)
        current = current.model_copy(update={"last_seen": now,
                                             "times_talked": current.times_talked + 1})
        people = [p for p in people if p.name.casefold() != name.casefold()] + [current]
    return profile.model_copy(update={
        "updated_at": now,
        "reflections": merge_list(profile.reflections, update.reflections, MAX_REFLECTIONS),
        "hobbies": merge_list(profile.hobbies, update.hobbies, MAX_ITEMS),
        "artistic_tastes": merge_list(profile.artistic_tastes, update.artistic_tastes,
                                      MAX_ITEMS),
        "people": people[-MAX_PEOPLE:],
    })


def _line_of_key(text: str, loc: tuple) -> int | None:
    """Best-effort line of the offending key (JSON has no node positions in stdlib)."""
    for part in reversed(loc):
        if isinstance(part, str):
            m = re.search(rf'"{re.escape(part)}"\s*:', text)
            if m:
                return text.count("\n", 0, m.start()) + 1
    return None


class ProfileStore:
    """Reads and atomically rewrites the profile file; a lock file serialises writers
    (daemon and ``entropi memory forget``) so neither undoes the other."""

    def __init__(self, path: Path, persona: str, cipher: Cipher | None = None) -> None:
        self.path = path
        self.persona = persona
        self.file = EncryptedJsonFile(path, cipher)

    @property
    def cipher(self) -> Cipher | None:
        return self.file.cipher

    def load(self) -> PersonaProfile:
        raw = self.file.read()
        if raw is None:
            return PersonaProfile(persona=self.persona)
        text = raw.decode("utf-8", errors="replace")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MemoryFileError(
                f"{self.path} line {exc.lineno}: not valid JSON ({exc.msg}); fix or move the "
                f"file away (it is never overwritten)") from None
        try:
            return PersonaProfile.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = tuple(err["loc"])
            line = _line_of_key(text, loc)
            where = ".".join(str(p) for p in loc) or "(top level)"
            raise MemoryFileError(
                f"{self.path}{f' line {line}' if line else ''}: {where}: {err['msg']}; fix or "
                f"move the file away (it is never overwritten)") from None

    def save(self, profile: PersonaProfile) -> None:
        self.file.write(profile.model_dump_json(indent=2).encode() + b"\n")

    def update(self, change) -> PersonaProfile:
        """Read the current file, apply ``change(profile) -> profile``, write atomically."""
        with self.file.lock():
            profile = change(self.load())
            self.save(profile)
            return profile
