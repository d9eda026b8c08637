"""The journal on disk: layout, permissions, durability after crashes, corrupt files,
two processes appending at once."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from entropi.core.errors import MemoryFileError
from entropi.memory.journal import Journal, read_all_entries

from .helpers import later, make_entry

WRITER = Path(__file__).with_name("writer_proc.py")
ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_day_files_in_tree_round_trip_and_private(tmp_path):
    journal = Journal(tmp_path / "journal")
    first = make_entry("late evening", at=later(0))
    second = make_entry("next day", at=later(86400), tags=("memory",))
    old = os.umask(0o022)  # a permissive umask must not leak into memory files
    try:
        for entry in (first, second):
            journal.append(entry)
    finally:
        os.umask(old)
    day1 = tmp_path / "journal/2026/11/2026-11-23.md"
    day2 = tmp_path / "journal/2026/11/2026-11-24.md"
    assert day1.is_file() and day2.is_file()
    assert journal.read_all() == [first, second] == read_all_entries(tmp_path / "journal")
    for d in (tmp_path / "journal", tmp_path / "journal/2026", tmp_path / "journal/2026/11"):
        assert mode(d) == 0o700
    assert mode(day1) == 0o600 and mode(day2) == 0o600


def test_append_after_torn_tail_keeps_later_entries_readable(tmp_path):
    journal = Journal(tmp_path)
    journal.append(make_entry("kept"))
    path = journal.day_path(make_entry().timestamp)
    with open(path, "ab") as f:  # what a power cut mid-write leaves behind
        f.write(make_entry("half", at=later(1)).to_markdown().encode()[:90])
    journal.append(make_entry("after the crash", at=later(2)))
    entries, torn = journal.read_file(path)
    assert [e.summary for e in entries] == ["kept", "after the crash"] and torn == 1


def test_corrupt_file_is_reported_with_line_and_never_overwritten(tmp_path):
    journal = Journal(tmp_path)
    journal.append(make_entry("one"))
    journal.append(make_entry("two", at=later(1)))
    path = journal.day_path(make_entry().timestamp)
    text = path.read_text().replace("- window: 1\n", "- window: one\n", 1)
    path.write_text(text)
    bad_line = text.splitlines().index("- window: one") + 1
    with pytest.raises(MemoryFileError) as err:
        journal.read_all()
    assert f"{path} line {bad_line}:" in err.value.message and "\n" not in err.value.message
    with pytest.raises(MemoryFileError):
        journal.remove(lambda e: True)  # purge must not rewrite a file it cannot read
    assert path.read_text() == text


def test_remove_rewrites_only_matching_entries(tmp_path):
    journal = Journal(tmp_path)
    for i, tag in enumerate(["music", "planning", "music"]):
        journal.append(make_entry(f"e{i}", at=later(i), tags=(tag,)))
    assert journal.remove(lambda e: "music" in e.tags) == 2
    assert [e.summary for e in journal.read_all()] == ["e1"]
    assert mode(journal.files()[0]) == 0o600


def _writer(root: Path, tag: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(WRITER), str(root), tag, str(count)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)


def test_sigkill_mid_stream_loses_no_acknowledged_entry(tmp_path):
    rng = random.Random(11)
    acked: set[str] = set()
    for round_ in range(12):
        proc = _writer(tmp_path, f"r{round_}", 10_000)
        assert proc.stdout is not None
        for _ in range(rng.randint(1, 40)):
            acked.add(proc.stdout.readline().split()[1])
        proc.send_signal(signal.SIGKILL)  # while it is still appending
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        for line in proc.stdout:  # acks already printed before the kill count too
            if line.endswith("\n"):
                acked.add(line.split()[1])
    journal = Journal(tmp_path)
    files = journal.files()
    assert files
    found = {e.id for path in files for e in journal.read_file(path)[0]}
    assert acked <= found
    assert len(found) >= len(acked)


def test_two_processes_appending_never_interleave(tmp_path):
    procs = [_writer(tmp_path, tag, 150) for tag in ("alpha", "beta")]
    acks = {}
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        acks[proc] = [line.split()[1] for line in out.splitlines()]
    entries = Journal(tmp_path).read_all()  # raises if any entry were interleaved
    assert len(entries) == 300
    assert {e.id for e in entries} == {i for ids in acks.values() for i in ids}
    for tag in ("alpha", "beta"):
        mine = [e for e in entries if e.tags == (tag,)]
        assert len(mine) == 150
        assert all(e.summary.startswith(f"{tag} {e.window} ") for e in mine)
