"""The run lock covers the data, not only the status file: a second daemon that shares any
data file with a running one (by name, symlink or hard link) stops at once, exit 2, naming
the pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from entropi.core.errors import ConfigError, UsageError
from entropi.service.status import Guarded, RunLock, write_status


def _held(*data: Guarded, status: Path | None = None) -> RunLock:
    lock = RunLock(status, data)
    lock.acquire()
    return lock


@pytest.mark.parametrize("alias", ["hard-link", "symlink", "same-name", "dot-dot"])
def test_a_second_lock_on_the_same_output_wav_names_the_holder(tmp_path, alias):
    wav = tmp_path / "out.wav"
    wav.write_bytes(b"RIFF")
    other = {"hard-link": tmp_path / "link.wav", "symlink": tmp_path / "sym.wav",
             "same-name": wav, "dot-dot": tmp_path / "sub" / ".." / "out.wav"}[alias]
    if alias == "hard-link":
        os.link(wav, other)
    elif alias == "symlink":
        os.symlink(wav, other)
    elif alias == "dot-dot":
        (tmp_path / "sub").mkdir()
    first = _held(Guarded("audio.output_wav", wav))
    try:
        with pytest.raises(UsageError) as err:
            _held(Guarded("audio.output_wav", other))
        assert f"pid {os.getpid()}" in err.value.message and err.value.exit_code == 2
        assert "audio.output_wav" in err.value.message
    finally:
        first.release()
    _held(Guarded("audio.output_wav", other)).release()  # released: free again
    assert wav.read_bytes() == b"RIFF"  # the lock never writes the data


def test_a_file_not_created_yet_and_a_symlinked_journal_folder_are_guarded(tmp_path):
    journal = tmp_path / "journal"
    os.symlink(journal, tmp_path / "journal-alias")  # dangling until the first lock makes it
    first = _held(Guarded("memory.journal_dir", journal, folder=True),
                  Guarded("memory.profile_path", tmp_path / "p.json"))
    try:
        assert not journal.exists() and not (tmp_path / "p.json").exists()  # never created
        assert (tmp_path / ".journal.daemon.lock").is_file()  # a lock file beside each
        with pytest.raises(UsageError, match=r"memory\.journal_dir"):
            _held(Guarded("memory.journal_dir", tmp_path / "journal-alias", folder=True))
        with pytest.raises(UsageError, match=r"memory\.profile_path"):
            _held(Guarded("conversation.transcript_file", tmp_path / "elsewhere.txt"),
                  Guarded("memory.profile_path", tmp_path / "p.json"))
        # The failed attempt released what it had taken: elsewhere.txt is free.
        _held(Guarded("conversation.transcript_file", tmp_path / "elsewhere.txt")).release()
    finally:
        first.release()


def test_an_existing_journal_is_locked_itself(tmp_path):
    journal = tmp_path / "journal"
    journal.mkdir()
    first = _held(Guarded("memory.journal_dir", journal, folder=True))
    try:
        (tmp_path / "elsewhere").mkdir()
        os.symlink(journal, tmp_path / "elsewhere" / "j")  # another name, same folder
        with pytest.raises(UsageError, match=rf"pid {os.getpid()}\) is running on memory"):
            _held(Guarded("memory.journal_dir", tmp_path / "elsewhere" / "j", folder=True))
    finally:
        first.release()


def test_status_folder_is_0700_whatever_the_umask_and_sys_is_one_line(tmp_path):
    old = os.umask(0)
    try:
        status = tmp_path / "state" / "deep" / "status.json"
        lock = _held(status=status.with_name("status.json.lock"))
        lock.release()
        write_status(tmp_path / "other" / "status.json", {"state": "live"})
    finally:
        os.umask(old)
    for folder in (tmp_path / "state", tmp_path / "state" / "deep", tmp_path / "other"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    with pytest.raises(ConfigError, match=r"service\.status_file: cannot create the run lock"):
        _held(status=Path("/sys/entropi-test/status.json.lock"))


@pytest.mark.slow  # ~10 s on 2 shared cores: two real processes, torch imported once
def test_a_second_daemon_on_shared_data_stops_at_once_naming_the_pid(daemon):
    """The audit's case: its own status file, the first daemon's journal, profile,
    transcript and (hard-linked) WAV. Before, it ran beside the first one."""
    daemon.config(**{"secondary_model.backend": "openai",
                     "secondary_model.base_url": "http://127.0.0.1:9/v1",
                     "conversation.transcript_file": str(daemon.dir / "t.txt")})
    (daemon.dir / "out.wav").write_bytes(b"")
    proc = daemon.start()
    try:
        daemon.wait_status(lambda st: st.get("state") == "starting", proc=proc, timeout=60)
        os.link(daemon.dir / "out.wav", daemon.dir / "alias.wav")
        second_dir = daemon.dir / "second"
        second_dir.mkdir()
        text = (daemon.dir / "config.yaml").read_text()
        config = second_dir / "config.yaml"
        config.write_text(text.replace(str(daemon.dir / "status.json"),
                                       str(second_dir / "status.json"))
                          .replace(str(daemon.dir / "out.wav"), str(daemon.dir / "alias.wav")))
        second = subprocess.run([sys.executable, "-m", "entropi", "run", "--config",
                                 str(config)], capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, cwd=second_dir, timeout=120)
        lines = second.stderr.strip().splitlines()
        assert (second.returncode, len(lines)) == (2, 1), second.stderr
        assert f"another entropi daemon (pid {proc.pid})" in lines[0], lines
        assert not (second_dir / "status.json").exists()  # stopped before writing anything
        assert proc.poll() is None  # the first one goes on
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, daemon.output()


def test_a_status_file_that_is_a_fifo_is_reported_not_waited_on(tmp_path):
    fifo = tmp_path / "status.json"
    os.mkfifo(fifo)
    code = ("from pathlib import Path\nfrom entropi.service.status import read_status\n"
            f"print(read_status(Path({str(fifo)!r}))['error'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout.strip() == f"{fifo}: unreadable status file (is a FIFO, not a " \
        "regular file)", proc.stderr
