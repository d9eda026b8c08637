"""Encryption at rest: round trip, refusal without the key, wrong key, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from entropi.core.crypto import cipher_from_env
from entropi.core.errors import ConfigError, MemoryFileError
from entropi.memory.journal import Journal
from entropi.memory.profile import ProfileStore
from entropi.memory.record import WindowRecord
from entropi.memory.service import MemoryService

from .helpers import later, make_entry, memory_cfg
from .test_journal_files import ROOT, WRITER

KEY = Fernet.generate_key().decode()
SECRET = "my sister Mia is moving to Lisbon, remember that, I'll help her pack"


async def test_service_round_trip_encrypted(tmp_path):
    env = {"ENTROPI_MEMORY_KEY": KEY}
    cfg = memory_cfg(tmp_path, encryption_key_env="ENTROPI_MEMORY_KEY", cooldown_seconds=0)
    mem = MemoryService(cfg, persona_name="Ada", env=env)
    await mem.start()
    mem.submit(WindowRecord(1, later(0), later(20), SECRET, "p",
                            {"profile_update": {"hobbies": ["moving to Lisbon"]}}))
    await mem.stop()
    (path,) = Journal(cfg.journal_dir).files()
    assert path.name.endswith(".md.enc")
    assert b"Lisbon" not in path.read_bytes()
    assert b"Lisbon" not in cfg.profile_path.read_bytes()
    cipher = cipher_from_env("ENTROPI_MEMORY_KEY", env)
    (entry,) = Journal(cfg.journal_dir, cipher).read_all()
    assert "Lisbon" in entry.summary and entry.window == 1
    assert ProfileStore(cfg.profile_path, "Ada", cipher).load().hobbies == ["moving to Lisbon"]
    again = MemoryService(cfg, persona_name="Ada", env=env)  # restart reads it back
    await again.start()
    assert "Lisbon" in again.context_for("Lisbon")
    await again.stop()


def test_without_key_or_with_wrong_key_files_are_refused(tmp_path):
    cipher = cipher_from_env("K", {"K": KEY})
    journal = Journal(tmp_path, cipher)
    journal.append(make_entry("private"))
    store = ProfileStore(tmp_path / "p.json", "Ada", cipher)
    store.update(lambda p: p)
    with pytest.raises(MemoryFileError, match=r"\.md\.enc: is encrypted; set memory"):
        Journal(tmp_path).read_all()
    with pytest.raises(MemoryFileError, match=r"p\.json: is encrypted"):
        ProfileStore(tmp_path / "p.json", "Ada").load()
    wrong = cipher_from_env("K", {"K": Fernet.generate_key().decode()})
    with pytest.raises(MemoryFileError, match=r"line 1: cannot decrypt with the key in \$K"):
        Journal(tmp_path, wrong).read_all()
    with pytest.raises(MemoryFileError, match=r"cannot decrypt with the key in \$K"):
        ProfileStore(tmp_path / "p.json", "Ada", wrong).load()


def test_missing_or_malformed_key_is_a_config_error():
    with pytest.raises(ConfigError, match="environment variable K is not set"):
        cipher_from_env("K", {})
    with pytest.raises(ConfigError, match="is not a Fernet key"):
        cipher_from_env("K", {"K": "hunter2"})
    assert cipher_from_env(None, {}) is None


def test_sigkilled_encrypted_writer_keeps_acknowledged_entries(tmp_path):
    env = {"ENTROPI_MEMORY_KEY": KEY}
    acked: set[str] = set()
    for round_ in range(3):
        proc = subprocess.Popen([sys.executable, str(WRITER), str(tmp_path), f"e{round_}",
                                 "10000", "ENTROPI_MEMORY_KEY"], stdout=subprocess.PIPE,
                                text=True, cwd=ROOT, env={**os.environ, **env})
        assert proc.stdout is not None
        for _ in range(5 + 7 * round_):
            acked.add(proc.stdout.readline().split()[1])
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        acked |= {line.split()[1] for line in proc.stdout if line.endswith("\n")}
    found = {e.id for e in Journal(tmp_path, cipher_from_env("ENTROPI_MEMORY_KEY", env))
             .read_all()}
    assert acked and acked <= found
