"""One journal entry and its Markdown form (written and parsed back, round trip exact).

An entry looks like::

    ## 2026-11-23 09:06:25.123456 UTC · Ada · window 12
    - id: 20261123T090625123456-3f2a9c
    - timestamp: 2026-11-23T09:06:25.123456+00:00
    - persona: Ada
    - window: 12
    - emotion: calm
    - importance: 0.62
    - tags: planning, emotion:calm
    - commitments:
      - call Sam on Sunday
    - summary: We planned the trip to Lisbon.
    <!-- end entry -->

The end marker tells a complete entry from one torn by a crash mid-write.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

END_MARKER = "<!-- end entry -->"
# Written by the appender after a torn tail so the broken block stays visibly ignored.
TORN_MARKER = "<!-- torn entry above: ignored -->"
_FIELDS = ("id", "timestamp", "persona", "window", "emotion", "importance", "tags",
           "commitments", "summary")
_TAG_OK = re.compile(r"[^a-z0-9:_\-]+")


def one_line(text: str) -> str:
    """Fields are single lines: newlines would break the Markdown structure."""
    return " ".join(text.split())


def normalise_tag(tag: str) -> str:
    return _TAG_OK.sub("-", tag.strip().lower()).strip("-")


def new_entry_id(ts: datetime) -> str:
    return f"{ts.astimezone(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class JournalEntry:
    id: str
    timestamp: datetime  # timezone-aware, microsecond precision
    persona: str
    window: int
    summary: str
    emotion: str = "neutral"
    importance: float = 0.0
    tags: tuple[str, ...] = ()
    commitments: tuple[str, ...] = field(default_factory=tuple)

    def text(self) -> str:
        """What search and forget look at."""
        return " ".join((self.summary, *self.commitments, self.emotion, *self.tags))

    def to_markdown(self) -> str:
        ts = self.timestamp.astimezone(UTC)
        lines = [
            f"## {ts:%Y-%m-%d %H:%M:%S.%f} UTC · {one_line(self.persona)} · window {self.window}",
            f"- id: {self.id}",
            f"- timestamp: {ts.isoformat(timespec='microseconds')}",
            f"- persona: {one_line(self.persona)}",
            f"- window: {self.window}",
            f"- emotion: {one_line(self.emotion)}",
            f"- importance: {self.importance:.2f}",
            f"- tags: {', '.join(self.tags)}",
            "- commitments:" + ("" if self.commitments else " none"),
            *(f"  - {one_line(c)}" for c in self.commitments),
            f"- summary: {one_line(self.summary)}",
            END_MARKER,
        ]
        return "\n".join(lines) + "\n\n"


class EntryParseError(ValueError):
    """``line`` is 1-based within the text that was parsed."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _parse_block(lines: list[tuple[int, str]]) -> JournalEntry:
    values: dict[str, str] = {}
    where: dict[str, int] = {}
    commitments: list[str] = []
    in_commitments = False
    for number, line in lines[1:]:
        if line.startswith("  - ") and in_commitments:
            commitments.append(line[4:].strip())
            continue
        m = re.fullmatch(r"- ([a-z]+):(.*)", line)
        if not m or m.group(1) not in _FIELDS:
            raise EntryParseError(number, f"unexpected line {line[:40]!r}")
        key, value = m.group(1), m.group(2).strip()
        if key in values:
            raise EntryParseError(number, f"field {key!r} appears twice")
        values[key] = value
        where[key] = number
        in_commitments = key == "commitments"
        if in_commitments and value not in ("", "none"):
            raise EntryParseError(number, "commitments must be listed on '  - ' lines")
    head = lines[0][0]
    missing = [k for k in _FIELDS if k not in values]
    if missing:
        raise EntryParseError(head, f"entry is missing field(s) {', '.join(missing)}")
    key = "timestamp"
    try:
        ts = datetime.fromisoformat(values[key])
        if ts.tzinfo is None:
            raise ValueError("no timezone")
        key = "window"
        window = int(values[key])
        key = "importance"
        importance = float(values[key])
        if not 0.0 <= importance <= 1.0:
            raise ValueError("must be within 0..1")
    except ValueError as exc:
        raise EntryParseError(where[key], f"bad {key} value: {exc}") from None
    tags = tuple(t.strip() for t in values["tags"].split(",") if t.strip())
    return JournalEntry(id=values["id"], timestamp=ts, persona=values["persona"], window=window,
                        summary=values["summary"], emotion=values["emotion"],
                        importance=importance, tags=tags, commitments=tuple(commitments))


def parse_markdown(text: str) -> tuple[list[JournalEntry], int]:
    """Entries in ``text`` and how many torn (crash-truncated) blocks were skipped.

    Strict: anything but entries, blank lines, a leading ``#`` title and torn blocks
    marked by the appender is an error with its line, so a hand edit is never silently
    misread. A final block without end marker is a torn tail (crash mid-append).
    """
    entries: list[JournalEntry] = []
    torn = 0
    block: list[tuple[int, str]] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if block is not None:
            if line == END_MARKER:
                entries.append(_parse_block(block))
                block = None
            elif line.endswith(TORN_MARKER):
                torn += 1
                block = None
            elif line.startswith("## "):
                raise EntryParseError(block[0][0], "entry has no end marker "
                                      f"{END_MARKER!r} before the next heading")
            else:
                block.append((number, line))
        elif line.endswith(TORN_MARKER):  # may be a torn heading: check before "## "
            torn += 1
        elif line.startswith("## "):
            block = [(number, line)]
        elif line.strip() and not (number == 1 and line.startswith("# ")):
            raise EntryParseError(number, f"text outside an entry: {line[:40]!r}")
    if block is not None:
        torn += 1  # torn tail: the write that was interrupted was never acknowledged
    return entries, torn
