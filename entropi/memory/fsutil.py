"""Durable, private file primitives: 0700 directories, 0600 files, fsync'd writes.

Journal and profile hold what a person said; nobody else on the machine should read them,
and an acknowledged write must survive a crash or a power cut.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from entropi.private_files import DIR_MODE, FILE_MODE, make_private_dirs, open_private, write_all


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) as 0700; tighten it if it already exists."""
    make_private_dirs(path)  # missing parents too: mkdir(parents=True) gives them 0777-umask
    # An existing folder keeps its mode otherwise: tighten it.
    if path.stat().st_mode & 0o777 != DIR_MODE:
        os.chmod(path, DIR_MODE)


def fsync_dir(path: Path) -> None:
    """Make a rename/create in ``path`` durable (the directory entry itself)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Exclusive fcntl lock on ``lock_path``: serialises writers across processes."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def append_durable(path: Path, data: bytes) -> bool:
    """Append ``data`` with one ``write`` and fsync; returns True when the file was new.

    The caller holds the lock, so a single O_APPEND write never interleaves with
    another writer's entry.
    """
    created = not path.exists()
    _write_synced(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, data)
    if created:
        fsync_dir(path.parent)
    return created


def _write_synced(path: Path, flags: int, data: bytes) -> None:
    """Open with ``flags``, force mode 0600 (umask or an old file may differ), write, fsync."""
    fd = open_private(path, flags)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically: temp file, fsync, rename, fsync the directory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _write_synced(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, data)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_tail(path: Path, size: int = 256) -> bytes:
    """The last ``size`` bytes of a file (b"" when it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read()
    except FileNotFoundError:
        return b""
