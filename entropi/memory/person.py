"""One person's memory folder under a shared root, and the lock their call holds on it.

In a cluster, a person's calls may land on any replica, on any machine: their journal,
profile, ledger and transcript live in ``memory.users_dir/<user>/`` on a filesystem all
replicas reach (NFS and the like). A call holds ``<folder>/.call.lock`` from its start until
its memory is flushed, so two calls of one person (two replicas, or two slots of one) never
interleave a write: the second is refused while the first is on. The lock is a POSIX
``fcntl`` record lock (``lockf``), which NFS carries between machines, and the kernel drops
it when the process dies, so a killed replica leaves no stale lock. Whatever fails on the
way in (the share unreachable, the folder unwritable) fails before anything is written.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from entropi.core.errors import MemoryFileError
from entropi.core.files import ensure_private_dir, open_private

LOCK_NAME = ".call.lock"

_held: set[Path] = set()  # POSIX locks do not exclude the same process: its own calls here
_held_guard = threading.Lock()


class PersonBusy(Exception):
    """The person is already in a call (on this replica or another)."""


class PersonLock:
    """Held for one call; :meth:`release` once its memory is flushed."""

    def __init__(self, folder: Path, fd: int) -> None:
        self.folder = folder
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the record lock
            self._fd = None
            with _held_guard:
                _held.discard(self.folder)


def lock_person(folder: Path, shared_root: Path | None = None) -> PersonLock:
    """Take the call lock of the person whose memory is ``folder``: :class:`PersonBusy` when
    another call has it, :class:`MemoryFileError` (one line) when it cannot be reached or
    written. ``shared_root``: the mounted share ``folder`` is in; it must already exist (an
    unmounted share must not become a fresh local folder). None: ``folder`` is local, made
    as needed."""
    if shared_root is not None and not shared_root.is_dir():
        raise MemoryFileError(f"memory.users_dir: {shared_root} is not reachable (not a "
                              "folder); mount the shared memory folder on this machine")
    with _held_guard:
        if folder in _held:
            raise PersonBusy(folder.name)
        _held.add(folder)
    try:
        ensure_private_dir(folder)
        fd = open_private(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    except OSError as exc:
        _forget(folder)
        raise MemoryFileError(f"memory: cannot use {folder} ({exc.strerror or exc}); check "
                              "the folder (or share) and its rights") from None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        _forget(folder)
        raise PersonBusy(folder.name) from None
    return PersonLock(folder, fd)


def _forget(folder: Path) -> None:
    with _held_guard:
        _held.discard(folder)
