"""Everything that holds conversation text is private, encrypted with the journal when
encryption is on, and covered by ``memory forget`` / ``memory purge``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from entropi.core.crypto import cipher_from_env, new_key
from entropi.core.files import ensure_private_dir, write_private
from entropi.memory.profile import ProfileStore, ProfileUpdate, merge
from entropi.memory.transcript_file import TranscriptFile, append_window
from entropi.service.status import write_status
from entropi.text.utterance import Utterance

ROOT = Path(__file__).resolve().parents[2]
JAN, MAR = datetime(2026, 1, 5, 10, 0, tzinfo=UTC), datetime(2026, 3, 9, 18, 30, tzinfo=UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0)  # the audit's umask 000: files would come out 0666/0777
    yield
    os.umask(old)


def test_status_summary_and_folders_are_private_whatever_the_umask(tmp_path, open_umask):
    status = tmp_path / "state" / "deep" / "status.json"
    write_status(status, {"state": "live"})
    summary = tmp_path / "out" / "summary.json"
    write_private(summary, b"{}")
    journal = tmp_path / "mem" / "a" / "journal"
    ensure_private_dir(journal)
    for path in (status, summary):
        assert _mode(path) == 0o600, path
    for folder in (status.parent, status.parent.parent, summary.parent, journal,
                   journal.parent, journal.parent.parent):
        assert _mode(folder) == 0o700, folder
    assert json.loads(status.read_text())["state"] == "live"
    assert not [p for p in status.parent.iterdir() if p.name.endswith(".tmp")]


def _window(path: Path, n: int, at: datetime, said: str, cipher=None) -> None:
    append_window(path, n, at, at, [Utterance(speaker="agent", text=said)],
                  f"You are Ada. Window {n}.", cipher)


def test_transcript_is_encrypted_when_encryption_is_on(tmp_path, open_umask):
    key = new_key()
    cipher = cipher_from_env("K", {"K": key})
    path = tmp_path / "out" / "transcript.txt"
    _window(path, 1, JAN, "Maria loves jazz in Lisbon.", cipher)
    _window(path, 2, MAR, "We planned the garden.", cipher)
    raw = path.read_bytes()
    assert b"Maria" not in raw and b"Lisbon" not in raw and b"garden" not in raw
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    blocks = TranscriptFile(path, cipher).blocks()
    assert blocks[0] == "# session 2026-01-05 10:00:00 UTC\n\n"  # the conversation's heading
    assert len(blocks) == 3 and "Maria loves jazz" in blocks[1]
    assert blocks[1].startswith("## window 1  2026-01-05 10:00:00")


def test_a_second_run_gets_its_own_session_heading(tmp_path):
    path = tmp_path / "transcript.txt"
    for at in (JAN, MAR):  # two runs, each numbering its windows from 1
        _window(path, 1, at, "Hello.")
        _window(path, 2, at, "Bye.")
    text = path.read_text()
    assert text.count("# session ") == 2 and text.count("## window 1 ") == 2
    second = text.index("# session 2026-03")
    assert text.index("## window 2 ") < second < text.rindex("## window 1 ")


def _setup(tmp_path: Path, key: str | None = None) -> tuple[Path, Path, dict[str, str]]:
    env = {"ENTROPI_TEST_KEY": key} if key else {}
    cipher = cipher_from_env("ENTROPI_TEST_KEY", env) if key else None
    (tmp_path / "config.yaml").write_text(
        "memory:\n  journal_dir: j\n  profile_path: p.json\n"
        + ("  encryption_key_env: ENTROPI_TEST_KEY\n" if key else "")
        + "conversation:\n  transcript_file: t.txt\nlogging:\n  level: warning\n")
    transcript = tmp_path / "t.txt"
    _window(transcript, 1, JAN, "Maria taught me chess.", cipher)
    _window(transcript, 2, MAR, "We talked about the garden.", cipher)
    store = ProfileStore(tmp_path / "p.json", "Ada", cipher)
    store.update(lambda p: merge(p, ProfileUpdate(hobbies=["chess with Maria", "gardening"],
                                                  artistic_tastes=["Maria's jazz records"]),
                                 JAN))
    return tmp_path / "config.yaml", transcript, env


def _entropi(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "entropi", *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, cwd=ROOT, timeout=120,
                          env={**os.environ, **env})


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_forget_covers_the_transcript_and_every_profile_field(tmp_path, encrypted):
    key = new_key() if encrypted else None
    config, transcript, env = _setup(tmp_path, key)
    out = _entropi("memory", "forget", "Maria", "--yes", "--config", str(config), env=env)
    assert out.returncode == 0, out.stderr
    assert "1 transcript windows" in out.stdout
    cipher = cipher_from_env("ENTROPI_TEST_KEY", env) if encrypted else None
    blocks = [b for b in TranscriptFile(transcript, cipher).blocks() if b.startswith("## ")]
    assert len(blocks) == 1 and "garden" in blocks[0]
    assert b"Maria" not in transcript.read_bytes()
    profile = ProfileStore(tmp_path / "p.json", "Ada", cipher).load()
    assert profile.hobbies == ["gardening"] and profile.artistic_tastes == []
    assert "maria" not in (tmp_path / "p.json").read_text().lower()


def test_purge_covers_the_transcript(tmp_path):
    config, transcript, env = _setup(tmp_path)
    out = _entropi("memory", "purge", "--before", "2026-02-01", "--yes", "--config",
                   str(config), env=env)
    assert out.returncode == 0, out.stderr
    blocks = TranscriptFile(transcript).blocks()
    assert len(blocks) == 1 and "window 2" in blocks[0]
    out = _entropi("memory", "purge", "--yes", "--config", str(config), env=env)
    assert out.returncode == 0, out.stderr
    assert not transcript.exists() and not (tmp_path / "p.json").exists()


def test_memory_files_that_are_fifos_fail_at_once_instead_of_hanging(tmp_path):
    """The audit's profile FIFO blocked the daemon: reads refuse anything but a file."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "p.json"
    os.mkfifo(fifo)
    code = ("from pathlib import Path\n"
            "from entropi.memory.store import EncryptedJsonFile\n"
            "from entropi.memory.transcript_file import TranscriptFile\n"
            "from entropi.core.errors import MemoryFileError\n"
            f"p = Path({str(fifo)!r})\n"
            "try:\n    EncryptedJsonFile(p).read()\n"
            "except MemoryFileError as e:\n    print('store:', e.message)\n"
            "try:\n    TranscriptFile(p).append('## window 1\\n')\n"
            "except OSError as e:\n    print('transcript:', e.strerror)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "store:" in proc.stdout and "FIFO" in proc.stdout, proc.stdout
    assert "transcript:" in proc.stdout, proc.stdout
