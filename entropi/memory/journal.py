"""The Markdown journal on disk: ``journal_dir/YYYY/MM/YYYY-MM-DD.md``, one file per UTC day.

Appends take an fcntl lock on ``journal_dir/.journal.lock``, write the whole entry with
one O_APPEND write and fsync before returning, so an acknowledged entry is on disk and
two processes never interleave partial entries. With encryption on, day files are
``YYYY-MM-DD.md.enc`` holding one Fernet token per line (one entry each).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from entropi.core.crypto import Cipher
from entropi.core.errors import MemoryFileError
from entropi.core.files import (
    append_durable,
    ensure_private_dir,
    locked,
    read_regular,
    read_tail,
    write_private,
)
from entropi.core.logs import get_logger
from entropi.memory.entry import (
    END_MARKER,
    TORN_MARKER,
    EntryParseError,
    JournalEntry,
    parse_markdown,
)

log = get_logger(__name__)
PLAIN, ENCRYPTED = ".md", ".md.enc"


class Journal:
    def __init__(self, root: Path, cipher: Cipher | None = None) -> None:
        self.root = root
        self.cipher = cipher
        self.lock_path = root / ".journal.lock"
        self._ready: set[Path] = set()

    # ------------------------------------------------------------------ paths

    def day_path(self, ts: datetime) -> Path:
        day = ts.astimezone(UTC)
        suffix = ENCRYPTED if self.cipher else PLAIN
        return self.root / f"{day:%Y}" / f"{day:%m}" / f"{day:%Y-%m-%d}{suffix}"

    def files(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/*")
                 if p.is_file() and p.name.endswith((PLAIN, ENCRYPTED))]
        return sorted(found)

    # ------------------------------------------------------------------ writing

    def _encode(self, entry: JournalEntry, new_file: bool) -> bytes:
        if self.cipher:
            return self.cipher.encrypt(entry.to_markdown().encode()) + b"\n"
        title = f"# Journal {entry.timestamp.astimezone(UTC):%Y-%m-%d}\n\n" if new_file else ""
        return (title + entry.to_markdown()).encode()

    def _torn_prefix(self, path: Path) -> bytes:
        """A marker to close a block torn by a crash, so later entries still parse."""
        tail = read_tail(path)
        if not tail:
            return b""
        if self.cipher:
            return b"" if tail.endswith(b"\n") else TORN_MARKER.encode() + b"\n"
        text = tail.rstrip(b"\n")
        if text.endswith((END_MARKER.encode(), TORN_MARKER.encode())) or (
                text.startswith(b"# Journal") and b"\n" not in text):
            return b""
        log.warning("journal_torn_tail", file=str(path))
        return TORN_MARKER.encode() + b"\n"

    def append(self, entry: JournalEntry) -> Path:
        path = self.day_path(entry.timestamp)
        if path.parent not in self._ready:  # root, year and month dirs all 0700
            for d in (self.root, path.parent.parent, path.parent):
                ensure_private_dir(d)
            self._ready.add(path.parent)
        with locked(self.lock_path):
            new_file = not path.exists() or path.stat().st_size == 0
            data = self._torn_prefix(path) + self._encode(entry, new_file)
            append_durable(path, data)
        return path

    # ------------------------------------------------------------------ reading

    def read_file(self, path: Path) -> tuple[list[JournalEntry], int]:
        """Entries of one day file and its count of torn blocks; errors name file+line."""
        try:
            raw = read_regular(path)
        except OSError as exc:
            raise MemoryFileError(f"{path}: cannot read: {exc.strerror}") from None
        if path.name.endswith(ENCRYPTED):
            return self._read_encrypted(path, raw)
        try:
            return parse_markdown(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise MemoryFileError(f"{path} line {line}: not UTF-8 text; fix or move the file "
                                  f"away (it is never overwritten)") from None
        except EntryParseError as exc:
            raise MemoryFileError(f"{path} line {exc.line}: {exc.message}; fix the entry or "
                                  f"move the file away (it is never overwritten)") from None

    def _read_encrypted(self, path: Path, raw: bytes) -> tuple[list[JournalEntry], int]:
        if self.cipher is None:
            raise MemoryFileError(
                f"{path}: is encrypted; set memory.encryption_key_env to the environment "
                f"variable holding its key (it is never read or written without it)")
        entries: list[JournalEntry] = []
        torn = 0
        lines = raw.split(b"\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            last = number == len(lines)  # no newline after it: a torn tail
            if line.endswith(TORN_MARKER.encode()) or last:
                torn += 1
                continue
            text = self.cipher.decrypt(line.strip(), f"{path} line {number}").decode()
            try:
                found, _ = parse_markdown(text)
            except EntryParseError as exc:
                raise MemoryFileError(f"{path} line {number}: {exc.message}") from None
            if len(found) != 1:
                raise MemoryFileError(f"{path} line {number}: expected one entry per line")
            entries.extend(found)
        return entries, torn

    def read_all(self) -> list[JournalEntry]:
        entries: list[JournalEntry] = []
        for path in self.files():
            found, torn = self.read_file(path)
            if torn:
                log.warning("journal_torn_entries_skipped", file=str(path), count=torn)
            entries.extend(found)
        entries.sort(key=lambda e: e.timestamp)
        return entries

    # ------------------------------------------------------------------ privacy

    @property
    def purge_stamp_path(self) -> Path:
        return self.root / ".purged"

    def purge_stamp(self) -> bytes:
        """Changes whenever something was deleted, so a running daemon drops its copy."""
        try:
            return read_regular(self.purge_stamp_path)
        except FileNotFoundError:
            return b""

    def mark_purged(self) -> None:
        ensure_private_dir(self.root)
        write_private(self.purge_stamp_path, os.urandom(8).hex().encode())

    def remove(self, doomed: Callable[[JournalEntry], bool]) -> int:
        """Delete matching entries (purge/forget); each changed file is replaced atomically.
        Every file is parsed before anything changes, so a corrupt file aborts cleanly."""
        if not self.root.is_dir():
            return 0  # no journal yet (forget/purge may still clean the transcript)
        with locked(self.lock_path):
            parsed = [(path, self.read_file(path)[0]) for path in self.files()]
            removed = 0
            for path, entries in parsed:
                keep = [e for e in entries if not doomed(e)]
                if len(keep) == len(entries):
                    continue
                removed += len(entries) - len(keep)
                if not keep:
                    os.unlink(path)
                    continue
                if path.name.endswith(ENCRYPTED):
                    assert self.cipher is not None  # read_file refused otherwise
                    data = b"".join(self.cipher.encrypt(e.to_markdown().encode()) + b"\n"
                                    for e in keep)
                else:
                    title = f"# Journal {path.name.removesuffix(PLAIN)}\n\n"
                    data = (title + "".join(e.to_markdown() for e in keep)).encode()
                write_private(path, data)
            if removed:
                self.mark_purged()
            return removed


def read_all_entries(root: Path, cipher: Cipher | None = None) -> list[JournalEntry]:
    """Every entry under ``root``, oldest first; parses every day file strictly."""
    return Journal(root, cipher).read_all()
