"""Private, durable files: everything entropi writes about a conversation.

New files are created 0600 and new folders 0700 whatever the umask; nobody else on the
machine should read what a person said. ``make_private_dirs`` leaves existing folders alone
(an output WAV in $HOME must not chmod $HOME); ``ensure_private_dir`` tightens a folder that
is entropi's own (the journal's). ``write_private`` is the one atomic replace: readers never
see half a file, an acknowledged write survives a crash or a power cut, and a failed write
leaves no temp file behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and any missing parents as 0700 (exact, not filtered by the umask)."""
    path = Path(path)
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # created meanwhile by someone else: theirs, leave its mode
        os.chmod(folder, DIR_MODE)


def open_private(path: Path, flags: int) -> int:
    """``os.open`` with mode 0600 enforced on the file (the umask or an old file may differ)."""
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:  # a short write (disk nearly full, signal) must not lose the rest
        view = view[os.write(fd, view):]


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


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: a 0600 temp file beside it, fsync, rename, fsync the
    folder (readers never see half a file; a crash keeps the old or the new). Missing
    folders are made 0700. On failure (a full disk…) raise OSError and leave no temp file."""
    path = Path(path)
    make_private_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        _write_synced(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
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
