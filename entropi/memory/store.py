"""One JSON document on disk, as every memory file that is not the journal keeps it.

Private (0600 in a 0700 folder), rewritten atomically (:func:`entropi.core.files.write_private`)
under a lock file shared with every other writer (the daemon, ``entropi memory forget``),
optionally Fernet-encrypted with ``memory.encryption_key_env``. A file that cannot be read or
decrypted raises one :class:`MemoryFileError` line and is never overwritten. The profile, the
ledger and the Discord consent roster are kept this way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from entropi.core.crypto import Cipher
from entropi.core.errors import MemoryFileError
from entropi.core.files import ensure_private_dir, locked, read_regular, write_private

FERNET_PREFIX = b"gAAAAA"  # every Fernet token starts with version byte 0x80


class EncryptedJsonFile:
    """The bytes of one JSON file; parsing and validating them is the owner's job."""

    def __init__(self, path: Path, cipher: Cipher | None = None) -> None:
        self.path = Path(path)
        self.cipher = cipher
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")

    def read(self) -> bytes | None:
        """The plain JSON bytes, or None when there is no file yet."""
        try:
            raw = read_regular(self.path)  # a FIFO here must not hang the daemon
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise MemoryFileError(f"{self.path}: cannot read: {exc.strerror}") from None
        if raw.startswith(FERNET_PREFIX):
            if self.cipher is None:
                raise MemoryFileError(
                    f"{self.path}: is encrypted; set memory.encryption_key_env to the "
                    f"environment variable holding its key")
            raw = self.cipher.decrypt(raw.strip(), str(self.path))
        return raw

    def write(self, data: bytes) -> None:
        """Replace the file (call inside :meth:`lock` when others may write it too)."""
        ensure_private_dir(self.path.parent)
        if self.cipher is not None:
            data = self.cipher.encrypt(data) + b"\n"
        write_private(self.path, data)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise writers across processes (read, change, write inside)."""
        ensure_private_dir(self.path.parent)
        with locked(self.lock_path):
            yield
