"""A real journal writer process for the crash and concurrency tests.

Usage: writer_proc.py JOURNAL_DIR TAG COUNT [KEY_ENV]
Appends COUNT entries and prints ``ack <id>`` after each append returned (fsync'd).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from entropi.core.crypto import cipher_from_env
from entropi.memory.entry import JournalEntry, new_entry_id
from entropi.memory.journal import Journal


def main() -> None:
    root, tag, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    cipher = cipher_from_env(sys.argv[4]) if len(sys.argv) > 4 else None
    journal = Journal(root, cipher)
    # A long summary makes each write big, so a kill lands mid-stream more often.
    filler = " ".join(f"{tag}-word{i}" for i in range(120))
    for i in range(count):
        ts = datetime.now(UTC)
        entry = JournalEntry(id=new_entry_id(ts), timestamp=ts, persona="Ada", window=i,
                             summary=f"{tag} {i} {filler}", importance=0.5, tags=(tag,))
        journal.append(entry)
        sys.stdout.write(f"ack {entry.id}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
