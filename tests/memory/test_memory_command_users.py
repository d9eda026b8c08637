"""``entropi memory ... --user ID``: one caller's memory, through real subprocesses."""

from __future__ import annotations

import re

import pytest

from entropi.config import for_user, load_config
from entropi.memory.journal import Journal
from entropi.memory.transcript_file import TranscriptFile

from .helpers import T0, later, make_entry
from .test_memory_command import entropi


@pytest.fixture
def people(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  tokens: {ALICE_TOKEN: alice, BOB_TOKEN: bob}\n"
                      "conversation:\n  transcript_file: talk.txt\n"
                      "memory:\n  journal_dir: memory/journal\n"
                      "  profile_path: memory/persona_state.json\n"
                      "logging:\n  level: warning\n")
    cfg = load_config(config, check=False)
    said = {"alice": ["Lena moved to Porto", "Alice plays the cello"],
            "bob": ["Ola moved to Gdansk", "Bob waters the ficus"],
            None: ["The owner likes tea"]}
    for user, lines in said.items():
        user_cfg = for_user(cfg, user) if user else cfg
        journal = Journal(user_cfg.memory.journal_dir)
        for i, line in enumerate(lines):
            journal.append(make_entry(line, at=later(3600 * i)))
        TranscriptFile(user_cfg.conversation.transcript_file).append(
            f"## window 1  {T0:%Y-%m-%d %H:%M:%S} – {T0:%H:%M:%S}\nuser: {lines[0]}\n\n")
    return str(config), cfg


def summaries(cfg) -> list[str]:
    return [e.summary for e in Journal(cfg.memory.journal_dir).read_all()]


def test_list_search_forget_one_user(people):
    config, cfg = people
    out = entropi("memory", "list", "--config", config, "--user", "alice")
    assert out.returncode == 0, out.stderr
    assert "Lena moved to Porto" in out.stdout and "cello" in out.stdout
    assert "Gdansk" not in out.stdout and "tea" not in out.stdout
    assert str(cfg.memory.users_root / "alice" / "journal") in out.stderr
    out = entropi("memory", "search", "moved", "--config", config, "--user", "bob")
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 1
    assert "Ola moved to Gdansk" in out.stdout
    out = entropi("memory", "list", "--config", config)  # no --user: the single-user files
    assert out.stdout.count("\n") == 1 and "The owner likes tea" in out.stdout
    out = entropi("memory", "users", "--config", config)
    assert out.returncode == 0 and [line.split()[0] for line in out.stdout.splitlines()] == \
        ["alice", "bob"]

    out = entropi("memory", "forget", "Lena", "--yes", "--config", config, "--user", "alice")
    assert out.returncode == 0, out.stderr
    assert "deleted 1 journal entries and 1 transcript windows" in out.stdout
    alice, bob = for_user(cfg, "alice"), for_user(cfg, "bob")
    assert summaries(alice) == ["Alice plays the cello"]
    assert "Lena" not in alice.conversation.transcript_file.read_text()
    assert summaries(bob) == ["Ola moved to Gdansk", "Bob waters the ficus"]  # untouched
    assert summaries(cfg) == ["The owner likes tea"]

    out = entropi("memory", "purge", "--yes", "--config", config, "--user", "bob")
    assert out.returncode == 0 and summaries(bob) == []
    assert not bob.conversation.transcript_file.exists()
    assert summaries(alice) == ["Alice plays the cello"]


@pytest.mark.parametrize(("user", "message"), [
    ("../alice", "usage error: memory list --user: user id '../alice' must be"),
    ("Alice", "usage error: memory list --user: user id 'Alice' must be"),
    ("carol", "input error: memory list --user: no memory folder for 'carol' in .* "
              r"\(users: alice, bob\)"),
])
def test_bad_or_unknown_user(people, user, message):
    config, _ = people
    out = entropi("memory", "list", "--config", config, "--user", user)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert re.match(message, out.stderr), out.stderr
