"""A small JSON status file a running daemon keeps current, read by ``entropi status``,
and the lock that keeps a second daemon off the same files."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from entropi.core.errors import UsageError
from entropi.core.files import write_private

# The daemon rewrites the file every second (loading included): an older one is a leftover.
STALE_SECONDS = 30.0


def write_status(path: Path | None, data: dict[str, Any]) -> None:
    """Replace the file atomically; on failure (full disk…) raise OSError, leaving no temp."""
    if path is None:
        return
    # 0600 / 0700 whatever the umask: it names the session; readers never see half a file.
    write_private(path, json.dumps({"pid": os.getpid(), "updated_at": time.time()} | data)
                  .encode())


def read_status(path: Path) -> dict[str, Any] | None:
    """The last status, with ``running`` telling whether its process is still alive and the
    file fresh; a file that is not a status object gets ``error`` (one line)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return {"running": False, "error": f"{path}: unreadable status file ({reason})"}
    pid, updated = (data.get("pid"), data.get("updated_at")) if isinstance(data, dict) else (
        None, None)
    if not isinstance(pid, int) or isinstance(pid, bool) or not isinstance(updated, int | float):
        return {"running": False, "error": f"{path}: not an entropi status file"}
    data["stale"] = time.time() - updated > STALE_SECONDS
    data["running"] = (_alive(pid) and data.get("state") != "stopped"
                       and not data["stale"])
    return data


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by the service user
    return True


def lock_path(status_file: Path | None, fallback: Path | None) -> Path | None:
    """Where the run lock lives: beside the status file, else beside ``fallback``."""
    anchor = status_file or fallback
    return anchor.with_name(f"{anchor.name}.lock") if anchor is not None else None


class RunLock:
    """An exclusive ``fcntl`` lock held for the daemon's life; the kernel drops it when the
    process dies, so a crash never leaves a stale lock behind. The file holds the pid."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise UsageError(f"another entropi daemon (pid {holder}) is running on these files "
                             f"(lock {self.path}); stop it first or give this one its own "
                             "service.status_file, audio.output_wav and memory paths") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None
