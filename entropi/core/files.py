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
import errno
import fcntl
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600

# File systems the kernel makes up: writing there is never what a config means.
PSEUDO_FILESYSTEMS = frozenset({
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs",
    "securityfs", "configfs", "pstore", "bpf", "efivarfs", "mqueue", "fusectl", "binfmt_misc",
    "hugetlbfs", "autofs", "nsfs", "rpc_pipefs"})


class PathKindError(Exception):
    """``path`` is something no role may use (a FIFO, a loop…); the message says what and
    :meth:`fix` what to do."""

    def __init__(self, message: str, bad_parent: bool = False) -> None:
        super().__init__(message)
        self.bad_parent = bad_parent

    def fix(self, wanted: str) -> str:
        return "fix the path" if self.bad_parent else f"give {wanted}"


def special_kind(mode: int) -> str | None:
    """What a non-file, non-folder ``st_mode`` is, in words (None for a file or folder)."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return None


def stat_kind(path: Path) -> os.stat_result | None:
    """``stat`` without opening anything (a FIFO would block an open): the result for a
    regular file or folder, None when nothing is there, PathKindError for a FIFO, socket,
    device, symlink loop or a path through a file."""
    if "\0" in str(path):
        raise PathKindError("holds a NUL character", bad_parent=True)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PathKindError("is a symlink loop") from None
        if exc.errno == errno.ENOTDIR:
            raise PathKindError(f"cannot exist: {_file_on_the_way(Path(path))} is a file, not "
                                "a folder", bad_parent=True) from None
        if exc.errno == errno.ENAMETOOLONG:
            raise PathKindError("is too long a path") from None
        return None  # no permission to look: the writability checks name it
    kind = special_kind(st.st_mode)
    if kind is not None:
        raise PathKindError(f"is {kind}, not a regular file")
    return st


def _file_on_the_way(path: Path) -> Path:
    """The first ancestor of ``path`` that is a file (what makes it ENOTDIR)."""
    for parent in reversed(Path(os.path.realpath(path)).parents):  # where a link leads
        with contextlib.suppress(OSError):
            if not stat.S_ISDIR(os.stat(parent).st_mode):
                return parent
    return path.parent


def file_identity(path: Path) -> tuple[int, int] | str:
    """What names one file whatever the spelling: (st_dev, st_ino) when it exists (hard
    links, symlinks), else the path with every existing symlink resolved."""
    try:
        st = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return st.st_dev, st.st_ino


def filesystem_type(path: Path) -> tuple[str, str] | None:
    """(type, mount point) of the file system holding ``path`` or its nearest existing
    ancestor, from /proc/self/mounts (None where that cannot be read)."""
    real = os.path.realpath(path)
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            mounts = [line.split()[1:3] for line in f if len(line.split()) >= 3]
    except OSError:
        return None
    best: tuple[str, str] | None = None
    for point, kind in mounts:
        point = point.replace("\\040", " ")
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[1])):
            best = (kind, point)
    return best


def open_regular(path: Path, flags: int = os.O_RDONLY, mode: int = FILE_MODE) -> int:
    """``os.open`` that refuses anything but a regular file without blocking on it: a FIFO
    would hang an ordinary open forever (O_NONBLOCK, then fstat, then blocking again)."""
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = special_kind(st.st_mode) or "a folder"
            raise OSError(errno.EINVAL, f"is {kind}, not a regular file", str(path))
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


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
    """``os.open`` with mode 0600 enforced on the file (the umask or an old file may differ);
    a FIFO, socket or device is refused (OSError) instead of blocking or being written."""
    fd = open_regular(path, flags, FILE_MODE)
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


def read_regular(path: Path) -> bytes:
    """The whole file; OSError for a FIFO, socket or device (which would block or never
    end) as for a missing file."""
    with os.fdopen(open_regular(path), "rb") as f:
        return f.read()


def read_tail(path: Path, size: int = 256) -> bytes:
    """The last ``size`` bytes of a file (b"" when it does not exist)."""
    try:
        with os.fdopen(open_regular(path), "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read()
    except FileNotFoundError:
        return b""
