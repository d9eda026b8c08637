"""Lifecycle edges: a failing status file, a second daemon, a stop during load, the
watchdog switch, `entropi status` on bad or stale files, a bad --summary-json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from entropi.core.errors import UsageError
from entropi.service.status import RunLock, read_status, write_status
from tests.service.conftest import log_events

pytestmark = pytest.mark.slow


def _entropi(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "entropi", *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, cwd=cwd, timeout=120)


def _temp_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.endswith(".tmp")]


def _sigterm(daemon, proc) -> str:
    """Stop the daemon as systemd would; it must exit 0. Its log."""
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = daemon.output()
    assert proc.returncode == 0, out
    return out


def test_status_survives_a_failing_disk_a_second_daemon_is_refused_and_watchdog_off(
        daemon, fake_llm, notify_socket):
    path, messages = notify_socket
    config = daemon.config(**{"secondary_model.backend": "openai",
                              "secondary_model.base_url": fake_llm.url,
                              "secondary_model.stream": False, "audio.fast": False,
                              "service.watchdog": False})
    proc = daemon.start(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    try:
        st = daemon.wait_status(lambda st: st.get("windows", 0) >= 1 and st["state"] == "live",
                                proc=proc)
        # The handover that opened window 2 is reported, not the new window's zero.
        assert st["last_handover_ms"] > 0, st
        second = _entropi("run", "--config", str(config), cwd=daemon.dir)
        assert second.returncode == 2, second.stderr
        assert f"pid {proc.pid}" in second.stderr and "\n" not in second.stderr.strip()
        # "Full disk": every status write from now on fails (the path became a directory).
        status = daemon.dir / "status.json"
        while True:
            status.unlink(missing_ok=True)
            try:
                status.mkdir()
                break
            except FileExistsError:  # the daemon wrote it again in between
                continue
        (status / "keep").write_text("x")
        time.sleep(2.5)  # two or three failed writes
        assert proc.poll() is None, daemon.output()
    except BaseException:
        proc.kill()
        raise
    out = _sigterm(daemon, proc)
    failed = [e for e in log_events(out) if e.get("event") == "status_write_failed"]
    assert len(failed) == 1, out  # said once, not every second
    assert daemon.summary()["windows"] >= 1
    assert _temp_files(daemon.dir) == []
    time.sleep(0.3)
    assert any(m.startswith("READY=1") for m in messages), messages
    assert "WATCHDOG=1" not in messages  # service.watchdog: false is honoured


def test_sigterm_during_model_load_stops_without_a_session(daemon):
    daemon.config(**{"secondary_model.backend": "openai",
                     "secondary_model.base_url": "http://127.0.0.1:9/v1"})
    proc = daemon.start()
    try:
        daemon.wait_status(lambda st: st.get("state") == "starting", proc=proc, timeout=60)
    except BaseException:
        proc.kill()
        raise
    out = _sigterm(daemon, proc)
    events = [e.get("event") for e in log_events(out)]
    assert "primed" not in events and "ready" not in events, out
    journal = "".join(p.read_text() for p in (daemon.dir / "journal").rglob("*.md"))
    assert "Session ended" not in journal
    assert daemon.status()["state"] == "stopped"


def test_summary_json_directory_is_refused_up_front(daemon):
    config = daemon.config()
    proc = _entropi("run", "--config", str(config), "--summary-json", str(daemon.dir),
                    cwd=daemon.dir)
    assert proc.returncode == 2
    assert "--summary-json" in proc.stderr and "is a folder" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ no model needed


def test_status_write_failure_raises_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "status.json"
    target.mkdir()
    (target / "x").write_text("x")
    with pytest.raises(OSError):
        write_status(target, {"state": "live"})
    assert _temp_files(tmp_path) == []


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"pid": "12", "updated_at": 1}',
                                     '{"state": "live"}', "\x00\x01"])
def test_entropi_status_on_a_malformed_file_is_one_line(tmp_path, content):
    status = tmp_path / "status.json"
    status.write_text(content)
    config = tmp_path / "config.yaml"
    config.write_text(f"service:\n  status_file: {status}\n")
    proc = _entropi("status", "--config", str(config), cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr == "" and len(proc.stdout.strip().splitlines()) == 1, proc.stdout
    assert proc.stdout.startswith("not running:") and str(status) in proc.stdout


def test_a_stale_status_file_is_not_called_running(tmp_path):
    status = tmp_path / "status.json"
    old = time.time() - 3600
    # Our own pid is alive, but the file was last refreshed an hour ago: a leftover whose
    # pid was reused.
    status.write_text(json.dumps({"pid": os.getpid(), "updated_at": old, "state": "live"}))
    data = read_status(status)
    assert data is not None and data["running"] is False and data["stale"] is True
    status.write_text(json.dumps({"pid": os.getpid(), "updated_at": time.time(),
                                  "state": "live"}))
    assert read_status(status)["running"] is True
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    status.write_text(json.dumps({"pid": int(dead.stdout), "updated_at": time.time(),
                                  "state": "live"}))
    assert read_status(status)["running"] is False


def test_run_lock_names_the_holder(tmp_path):
    first = RunLock(tmp_path / "status.json.lock")
    first.acquire()
    try:
        with pytest.raises(UsageError) as err:
            RunLock(tmp_path / "status.json.lock").acquire()
        assert f"pid {os.getpid()}" in err.value.message and err.value.exit_code == 2
    finally:
        first.release()
    again = RunLock(tmp_path / "status.json.lock")
    again.acquire()  # released: free again
    again.release()

