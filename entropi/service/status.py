"""A small JSON status file a running daemon keeps current, read by ``entropi status``,
and the lock that keeps a second daemon off the same files."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entropi.core.errors import ConfigError, UsageError
from entropi.core.files import (
    make_private_dirs,
    read_regular,
    write_private,
)

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
        data = json.loads(read_regular(path))  # a FIFO there must not hang `entropi status`
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        reason = (getattr(exc, "strerror", None) or str(exc).splitlines()[0] if str(exc)
                  else type(exc).__name__)
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


def lock_path(status_file: Path | None) -> Path | None:
    """Where the status file's run lock lives: beside it."""
    return status_file.with_name(f"{status_file.name}.lock") if status_file is not None else None


@dataclass(frozen=True)
class Guarded:
    """A run's data that a second daemon must not touch: ``key`` names it in the error."""

    key: str
    path: Path
    folder: bool = False


class RunLock:
    """Exclusive ``fcntl`` locks held for the daemon's life, on the status file's lock and on
    every piece of the run's data: through a lock file beside its real path (a file or folder
    not created yet, a file replaced by rename) and, where it exists, on the file or folder
    itself (so a hard link to it is caught). Nothing of the data is created here. The kernel
    drops the locks when the process dies, so a crash never leaves a stale lock behind."""

    def __init__(self, path: Path | None, data: Sequence[Guarded] = ()) -> None:
        self.path = path
        self.data = tuple(data)
        self._fds: list[int] = []

    def acquire(self) -> None:
        try:
            if self.path is not None:
                self._named(self.path, "service.status_file", self.path)
            for item in self.data:
                self._guard(item)
        except BaseException:
            self.release()
            raise

    def _guard(self, item: Guarded) -> None:
        real = Path(os.path.realpath(item.path))
        self._named(real.with_name(f".{real.name}.daemon.lock"), item.key, item.path)
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_DIRECTORY if item.folder
                                                             else 0)
        try:
            fd = os.open(real, flags)
        except FileNotFoundError:
            return  # not created yet: the lock file beside it guards the name
        except OSError as exc:
            raise ConfigError(f"{item.key}: cannot lock {item.path} ({exc.strerror}); give a "
                              "path in a writable folder") from None
        self._hold(fd, item)

    def _named(self, lock: Path, key: str, shown: Path) -> None:
        """A lock file holding the holder's pid."""
        try:
            make_private_dirs(lock.parent)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise ConfigError(f"{key}: cannot create the run lock {lock} ({exc.strerror}); "
                              "give a path in a writable folder") from None
        self._hold(fd, Guarded(key, shown), pid_file=True)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def _hold(self, fd: int, item: Guarded, pid_file: bool = False) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd, pid_file)
            os.close(fd)
            raise UsageError(
                f"another entropi daemon (pid {holder}) is running on {item.key} "
                f"({item.path}); stop it first or give this one its own "
                "service.status_file, audio.output_wav, transcript and memory paths") from None
        except OSError as exc:
            os.close(fd)
            raise ConfigError(f"{item.key}: cannot lock {item.path} ({exc.strerror})") from None
        self._fds.append(fd)

    def release(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)  # closing drops the lock


def _holder(fd: int, pid_file: bool) -> str:
    """The pid holding a lock on ``fd``'s file: from the lock file itself, else from
    /proc/locks ("1: FLOCK ADVISORY WRITE <pid> <maj>:<min>:<inode> 0 EOF")."""
    if pid_file:
        written = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if written.isdigit():
            return written
    st = os.fstat(fd)
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return "?"
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or "->" in parts or parts[1] != "FLOCK":
            continue
        dev = parts[5].split(":")
        with contextlib.suppress(ValueError):
            if len(dev) == 3 and int(dev[2]) == st.st_ino and \
                    os.makedev(int(dev[0], 16), int(dev[1], 16)) == st.st_dev:
                return parts[4]
    return "?"
