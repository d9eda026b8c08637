"""Files that hold a conversation (output WAV, status, summary) are private whatever the umask.

New files are created 0600 and new folders 0700, like the journal; existing folders are left
alone (an output WAV in $HOME must not chmod $HOME).
"""

from __future__ import annotations

import contextlib
import os
import threading
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


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` through a 0600 temp file and a rename (readers never
    see half a file); on failure (a full disk…) raise OSError and leave no temp file."""
    make_private_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
