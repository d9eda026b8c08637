"""``conversation.transcript_file``: what was said, window by window; private like the journal.

One block per window, headed ``## window N  YYYY-MM-DD HH:MM:SS – HH:MM:SS`` (UTC); each
conversation's first window follows a ``# session YYYY-MM-DD HH:MM:SS UTC`` block, so a second
run's windows (numbered from 1 again) are told apart. With
``memory.encryption_key_env`` set, each block is written as one Fernet token line instead,
so the transcript is no less protected than the journal. ``memory purge`` and ``memory
forget`` rewrite it (atomically, under the same lock the writer takes) like the journal.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from entropi.core.crypto import Cipher
from entropi.core.files import (
    append_durable,
    locked,
    make_private_dirs,
    read_regular,
    write_private,
)
from entropi.text.utterance import Utterance, render_transcript

_HEADING = re.compile(r"^(?:## window \d+|# session) +(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", re.M)
_TOKEN = re.compile(rb"^gAAAAA[A-Za-z0-9_=-]+$")  # a Fernet token (version byte 0x80)


class TranscriptFile:
    def __init__(self, path: Path, cipher: Cipher | None = None) -> None:
        self.path = Path(path)
        self.cipher = cipher

    @property
    def _lock(self) -> Path:
        return self.path.with_name(f".{self.path.name}.lock")

    def _encode(self, block: str) -> bytes:
        if self.cipher is None:
            return block.encode()
        return self.cipher.encrypt(block.encode()) + b"\n"

    def append(self, block: str) -> None:
        """Append one window's block (blocking: call it in a thread)."""
        # Not ensure_private_dir: the file may sit in a shared folder such as $HOME, which
        # must not be chmod'ed; folders created here are 0700 and the file itself 0600.
        make_private_dirs(self.path.parent)
        with locked(self._lock):
            append_durable(self.path, self._encode(block))

    def blocks(self) -> list[str]:
        """Every window's block, decrypted; plain blocks written before encryption was
        turned on are read too."""
        try:
            raw = read_regular(self.path)
        except FileNotFoundError:
            return []
        out: list[str] = []
        plain: list[str] = []
        for number, line in enumerate(raw.splitlines(keepends=True), 1):
            if _TOKEN.match(line.strip()):
                if self.cipher is None:
                    from entropi.core.errors import MemoryFileError

                    raise MemoryFileError(
                        f"{self.path}: is encrypted; set memory.encryption_key_env to the "
                        "environment variable holding its key")
                out.append(self.cipher.decrypt(line.strip(), f"{self.path} line {number}")
                           .decode())
            else:
                plain.append(line.decode(errors="replace"))
        out.extend(_split_plain("".join(plain)))
        return out

    def remove(self, doomed: Callable[[str], bool]) -> int:
        """Drop the blocks ``doomed`` picks; the rest is rewritten atomically (re-encrypted
        when encryption is on). Returns how many were removed."""
        if not self.path.exists():
            return 0
        with locked(self._lock):
            blocks = self.blocks()
            keep = [b for b in blocks if not doomed(b)]
            removed = len(blocks) - len(keep)
            if removed:
                write_private(self.path, b"".join(self._encode(b) for b in keep))
        return removed

    def delete(self) -> bool:
        with locked(self._lock):
            existed = self.path.exists()
            self.path.unlink(missing_ok=True)
        return existed


def _split_plain(text: str) -> list[str]:
    starts = [m.start() for m in _HEADING.finditer(text)]
    if not starts:
        return [text] if text.strip() else []
    blocks = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]
    if text[:starts[0]].strip():
        blocks.insert(0, text[:starts[0]])
    return blocks


def block_time(block: str) -> datetime | None:
    """When a window started (UTC), from its heading."""
    m = _HEADING.search(block)
    if m is None:
        return None
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def append_window(path: Path, window: int, started: datetime, ended: datetime,
                  utterances: list[Utterance], prompt: str, cipher: Cipher | None = None) -> None:
    """Append one window to the session transcript file (blocking: call it in a thread);
    encrypted like the journal when ``cipher`` is given."""
    body = render_transcript(utterances) or "(nothing said)"
    text = (f"## window {window}  {started:%Y-%m-%d %H:%M:%S} – {ended:%H:%M:%S}\n{body}\n"
            f"next prompt: {prompt}\n\n")
    file = TranscriptFile(path, cipher)
    if window == 1:  # a new conversation: its own heading (a block, dated like a window)
        file.append(f"# session {started:%Y-%m-%d %H:%M:%S} UTC\n\n")
    file.append(text)
