"""Who may be remembered, and what of a window may be written to the memory files.

``discord_consent.json`` (beside the persona profile, 0600, rewritten atomically, encrypted
like the profile with ``memory.encryption_key_env``) maps a Discord user id to their display
name and choice. :class:`Persisted` is what a finished window leaves for the journal, the
profile and the transcript file once a transport's consent gate has filtered it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from entropi.config import Config
from entropi.core.crypto import Cipher
from entropi.core.errors import MemoryFileError
from entropi.memory.store import EncryptedJsonFile
from entropi.text.utterance import Utterance


@dataclass(frozen=True)
class Persisted:
    """What of a finished window may be written to journal, profile and transcript file."""

    utterances: list[Utterance]
    prompt: str
    directive: dict[str, Any] | None
    people: tuple[str, ...] = ()  # opted-in speakers heard, for the profile's people roster


def consent_path(cfg: Config) -> Path:
    return cfg.discord.consent_file or cfg.memory.profile_path.with_name("discord_consent.json")


@dataclass
class Choice:
    name: str
    remember: bool
    since: str


class ConsentStore:
    """The roster on disk; every change is written before the command answers."""

    def __init__(self, path: Path, default_remember: bool, cipher: Cipher | None = None
                 ) -> None:
        self.path = path
        self.file = EncryptedJsonFile(path, cipher)
        self.default_remember = default_remember
        self._lock = threading.Lock()
        self._people: dict[int, Choice] = self._load()

    def _load(self) -> dict[int, Choice]:
        raw = self.file.read()
        if raw is None:
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
            return {int(uid): Choice(**row) for uid, row in data.get("people", {}).items()}
        except (ValueError, TypeError, AttributeError) as exc:
            raise MemoryFileError(f"{self.path}: unreadable consent roster ({exc}); fix or "
                                  "move the file away (it is never overwritten)") from None

    def _save(self) -> None:
        data = {"version": 1, "people": {str(uid): vars(c) for uid, c in self._people.items()}}
        with self.file.lock():
            self.file.write((json.dumps(data, indent=2) + "\n").encode())

    def remembers(self, user_id: int) -> bool:
        with self._lock:
            choice = self._people.get(user_id)
        return choice.remember if choice is not None else self.default_remember

    def set(self, user_id: int, name: str, remember: bool) -> None:
        with self._lock:
            self._people[user_id] = Choice(name, remember, datetime.now(UTC).isoformat())
            self._save()

    def opted_in(self) -> list[str]:
        with self._lock:
            return sorted(c.name for c in self._people.values() if c.remember)
