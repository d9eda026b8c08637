"""``entropi memory`` through real subprocesses on a real journal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from entropi.memory.journal import Journal
from entropi.memory.profile import ProfileStore, ProfileUpdate, merge

from .helpers import T0, later, make_entry

ROOT = Path(__file__).resolve().parents[2]


def entropi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "entropi", *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=120)


@pytest.fixture
def setup(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("memory:\n  journal_dir: j\n  profile_path: state/persona_state.json\n"
                      "logging:\n  level: warning\n")
    journal = Journal(tmp_path / "j")
    entries = [
        make_entry("Sam taught me a jazz chord", at=T0, tags=("music",)),
        make_entry("Planned the Lisbon trip with Mia", at=later(86400 * 3), tags=("planning",)),
        make_entry("Mia's birthday is in May", at=later(86400 * 5), tags=("memory",)),
    ]
    for e in entries:
        journal.append(e)
    store = ProfileStore(tmp_path / "state/persona_state.json", "Ada")
    store.update(lambda p: merge(p, ProfileUpdate(reflections=["Mia seems tired lately"],
                                                  people=[{"name": "Mia", "sentiment": 0.7},
                                                          {"name": "Sam", "sentiment": 0.4}]),
                                 T0))
    return str(config), journal, store, entries


def test_list_search_show(setup):
    config, _, _, entries = setup
    out = entropi("memory", "list", "--config", config)
    assert out.returncode == 0, out.stderr
    assert [line.split()[0] for line in out.stdout.splitlines()] == [e.id for e in entries]
    out = entropi("memory", "search", "jazz chord", "--config", config)
    assert out.returncode == 0 and out.stdout.split()[0] == entries[0].id
    assert len(out.stdout.splitlines()) == 1
    out = entropi("memory", "show", entries[1].id[:22], "--config", config)
    assert out.returncode == 0 and "- summary: Planned the Lisbon trip with Mia" in out.stdout
    out = entropi("memory", "show", "nope", "--config", config)
    assert out.returncode == 2 and "no journal entry with id 'nope'" in out.stderr


def test_purge_refuses_without_tty_or_yes_and_filters(setup):
    config, journal, store, entries = setup
    out = entropi("memory", "purge", "--tag", "music", "--config", config)
    assert out.returncode == 2 and "pass --yes" in out.stderr
    assert len(journal.read_all()) == 3
    out = entropi("memory", "purge", "--before", "2026-11-25", "--yes", "--config", config)
    assert out.returncode == 0, out.stderr
    assert [e.id for e in journal.read_all()] == [e.id for e in entries[1:]]
    out = entropi("memory", "purge", "--tag", "memory", "-y", "--config", config)
    assert [e.id for e in journal.read_all()] == [entries[1].id]
    out = entropi("memory", "purge", "--before", "yesterday", "--yes", "--config", config)
    assert out.returncode == 2 and "use YYYY-MM-DD" in out.stderr
    out = entropi("memory", "purge", "--yes", "--config", config)
    assert out.returncode == 0 and journal.read_all() == [] and not store.path.exists()


def test_forget_person_everywhere(setup):
    config, journal, store, entries = setup
    out = entropi("memory", "forget", "Mia", "--config", config)
    assert out.returncode == 2 and "pass --yes" in out.stderr
    out = entropi("memory", "forget", "mia", "--yes", "--config", config)
    assert out.returncode == 0, out.stderr
    assert [e.id for e in journal.read_all()] == [entries[0].id]
    profile = store.load()
    assert [p.name for p in profile.people] == ["Sam"] and profile.reflections == []


def test_encrypted_journal_needs_the_key(tmp_path):
    from entropi.core.crypto import cipher_from_env

    key = entropi("memory", "keygen").stdout.strip()
    config = tmp_path / "enc.yaml"
    config.write_text("memory:\n  journal_dir: jj\n  profile_path: enc_state.json\n"
                      "  encryption_key_env: MEMKEY\n")
    Journal(tmp_path / "jj", cipher_from_env("MEMKEY", {"MEMKEY": key})).append(make_entry())
    out = entropi("memory", "list", "--config", str(config), env={"MEMKEY": key})
    assert out.returncode == 0 and "We planned the trip" in out.stdout
    out = entropi("memory", "list", "--config", str(config), env={"MEMKEY": ""})
    assert out.returncode == 2 and "MEMKEY is not set" in out.stderr
    other = entropi("memory", "keygen").stdout.strip()
    out = entropi("memory", "list", "--config", str(config), env={"MEMKEY": other})
    assert out.returncode == 6 and "cannot decrypt with the key in $MEMKEY" in out.stderr
    config.write_text("memory:\n  journal_dir: jj\n  profile_path: enc_state.json\n")
    out = entropi("memory", "list", "--config", str(config))
    assert out.returncode == 6 and ".md.enc: is encrypted" in out.stderr


def test_confirmation_prompt_on_a_terminal(setup):
    import pty

    config, journal, _, entries = setup
    for answer, code, left in ((b"n\n", 1, 3), (b"y\n", 0, 2)):
        master, slave = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "entropi", "memory", "purge", "--tag",
                                 "music", "--config", config], stdin=slave,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        os.close(slave)
        os.write(master, answer)  # the tty buffers it until input() reads
        out, err = proc.communicate(timeout=60)
        os.close(master)
        assert proc.returncode == code, err
        assert b"Delete 1 journal entries? [y/N]" in out
        assert len(journal.read_all()) == left
    assert entries[0].id not in {e.id for e in journal.read_all()}
