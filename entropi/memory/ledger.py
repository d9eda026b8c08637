"""The ledger: facts and open commitments from both speakers, carried verbatim into every prompt.

A rolling summary forgets by design (each answer replaces the last, and a small model copies
the previous one). Facts and promises therefore live here instead: merged deterministically
(normalised keys, dedupe, caps), touched when mentioned again, and commitments expire after
their due day or when resolved. Each item carries the importance the compactor scored; facts
are listed most important first and, over the caps, the *least important* go (never the
oldest: a blood type said in the first window matters as much in the hundredth). The file
sits beside the profile (``ledger.json``), written atomically under a lock like the profile.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from entropi.core.crypto import Cipher
from entropi.core.errors import MemoryFileError
from entropi.memory.store import EncryptedJsonFile
from entropi.text.gates import content_words
from entropi.text.said import Said, due_words

MAX_FACTS = 100
MAX_COMMITMENTS = 20
SAME = 0.7  # Jaccard overlap of content words above which two items are one
ECHO = 0.5  # share of the shorter item's words that makes it an echo in the same window
GRACE = timedelta(days=1)  # a commitment stays a day past its due day
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RESOLVED = re.compile(r"\b(?:i|we) (?:did|called|finished|sent|booked|went|made|bought|"
                       r"paid|fixed|talked)\b|\bdone\b|\balready\b", re.IGNORECASE)


@dataclass(frozen=True)
class Item:
    kind: str  # "fact" | "commitment"
    text: str
    who: str
    key: str
    first_window: int
    last_window: int
    due: str = ""
    due_at: str | None = None  # ISO date (end of the due day, UTC), when a day was named
    resolved: bool = False
    importance: float = 0.5  # 0..1 (files written before scoring: 0.5)

    def words(self) -> set[str]:
        return set(self.key.split())

    def speaker(self) -> str:
        if self.who == "agent":
            return "You said:"
        return f"{self.who.split(':', 1)[1] if ':' in self.who else 'The user'} said:"


def render_items(items: list[Item]) -> list[str]:
    """Verbatim lines with their speaker, named once per run of the same speaker (tokens
    are scarce: "Sam said: A. B. You said: C.")."""
    out, last = [], None
    for item in items:
        speaker = item.speaker()
        out.append(item.text if speaker == last else f"{speaker} {item.text}")
        last = speaker
    return out


def normal_key(text: str) -> str:
    return " ".join(sorted(content_words(text)))


def due_date(due: str, when: datetime) -> str | None:
    """End of the named day: a weekday (next occurrence), tomorrow, today/tonight."""
    low = due.lower()
    day = when.astimezone(UTC).date()
    if low in ("today", "tonight") or re.match(r"\d", low):
        target = day
    elif low == "tomorrow":
        target = day + timedelta(days=1)
    elif low in _DAYS:
        target = day + timedelta(days=(_DAYS.index(low) - day.weekday()) % 7)
    elif low.startswith("next "):
        target = day + timedelta(days={"week": 7, "month": 31, "year": 366}[low[5:]])
    else:
        return None
    return target.isoformat()


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, len(a | b))


@dataclass
class Ledger:
    items: list[Item] = field(default_factory=list)
    window: int = 0  # windows compacted so far, across restarts (item ages count in windows)

    def facts(self) -> list[Item]:
        """Most important first; among equals the recently touched."""
        return sorted((i for i in self.items if i.kind == "fact"),
                      key=lambda i: (-i.importance, -i.last_window, -i.first_window))

    def commitments(self) -> list[Item]:
        """Open ones, due soonest first (undated after dated), then most recent."""
        return sorted((i for i in self.items if i.kind == "commitment" and not i.resolved),
                      key=lambda i: (i.due_at or "9999", -i.last_window))

    def merge(self, said: list[Said], window: int, when: datetime,
              resolved: list[str] = (), window_text: str = "") -> None:
        """Add what was said in ``window``; deterministic for the same inputs."""
        for s in said:
            key = normal_key(s.text)
            if not key:
                continue
            match = self._find(s.kind, key, window)
            if match is None:
                due = due_words(s.text) if s.kind == "commitment" else ""
                self.items.append(Item(s.kind, s.text, s.who, key, window, window, due,
                                       due_date(due, when) if due else None,
                                       importance=s.importance))
                continue
            new = set(key.split())
            fuller = new > match.words()  # a fuller version wins, with its speaker
            self._swap(match, replace(match, text=s.text if fuller else match.text,
                                      who=s.who if fuller else match.who,
                                      key=key if fuller else match.key, last_window=window,
                                      importance=max(match.importance, s.importance)))
        self._resolve(resolved, window_text)
        self.expire(when)
        self._cap()

    def touch(self, window_text: str, window: int) -> None:
        """Items whose words come up again count as recently touched."""
        words = content_words(window_text)
        for item in list(self.items):
            if item.kind == "fact" and len(item.words() & words) >= max(2, len(item.words()) // 2):
                self._swap(item, replace(item, last_window=window))

    def expire(self, now: datetime) -> None:
        today = now.astimezone(UTC)
        self.items = [i for i in self.items if not (
            i.kind == "commitment" and (i.resolved or (
                i.due_at is not None
                and datetime.fromisoformat(i.due_at).replace(tzinfo=UTC) + GRACE < today)))]

    def _resolve(self, resolved: list[str], window_text: str) -> None:
        # A commitment is done when the LLM says so *and* its words are in the window, or
        # when someone says "I did / called / … <its words>" in the window.
        done_sentences = [s for s in re.split(r"(?<=[.!?])\s+", window_text)
                          if _RESOLVED.search(s)]
        claims = [content_words(c) for c in resolved]
        for item in self.commitments():
            words = item.words()
            by_llm = any(_overlap(words, c) >= 0.5 for c in claims) and \
                len(words & content_words(window_text)) >= 2
            said = any(len(words & content_words(s)) >= max(2, len(words) // 2)
                       for s in done_sentences)
            if by_llm or said:
                self._swap(item, replace(item, resolved=True))

    def _find(self, kind: str, key: str, window: int) -> Item | None:
        """The same item: near-identical words, or (in the window that said it) an echo that
        shares half its words ("Lena in Porto, lovely." after "My sister Lena lives in
        Porto.")."""
        words = set(key.split())
        best = max((i for i in self.items if i.kind == kind),
                   key=lambda i: _overlap(words, i.words()), default=None)
        if best is not None and (best.key == key or _overlap(words, best.words()) >= SAME):
            return best
        for item in self.items:  # an echoed promise is not a new fact either
            shared = len(words & item.words())
            if (item.last_window == window and (item.kind == kind or kind == "fact")
                    and shared >= ECHO * min(len(words), len(item.words()))):
                return item
        return None

    def _swap(self, old: Item, new: Item) -> None:
        self.items[self.items.index(old)] = new

    def _cap(self) -> None:
        for kind, cap in (("fact", MAX_FACTS), ("commitment", MAX_COMMITMENTS)):
            mine = [i for i in self.items if i.kind == kind]
            if len(mine) > cap:
                keep = sorted(mine, key=lambda i: (i.importance, i.last_window,
                                                   i.first_window))[-cap:]
                self.items = [i for i in self.items if i.kind != kind or i in keep]

    def query_words(self) -> str:
        """Text for retrieval: what the ledger is about."""
        return " ".join(i.text for i in self.commitments()[:5] + self.facts()[:5])

    # ------------------------------------------------------------------ files

    def to_json(self) -> bytes:
        return json.dumps({"version": 1, "window": self.window,
                           "items": [asdict(i) for i in self.items]},
                          indent=1).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes, source: str) -> Ledger:
        try:
            data = json.loads(raw)
            return cls([Item(**i) for i in data["items"]], int(data.get("window", 0)))
        except (ValueError, KeyError, TypeError) as exc:
            raise MemoryFileError(f"{source}: not a valid ledger ({exc}); fix or move the "
                                  "file away (it is never overwritten)") from None


class LedgerStore:
    """``ledger.json`` beside the profile; atomic rewrite under a lock, optional encryption."""

    def __init__(self, path: Path, cipher: Cipher | None = None) -> None:
        self.path = path
        self.file = EncryptedJsonFile(path, cipher)

    @property
    def cipher(self) -> Cipher | None:
        return self.file.cipher

    def load(self) -> Ledger:
        raw = self.file.read()
        return Ledger() if raw is None else Ledger.from_json(raw, str(self.path))

    def save(self, ledger: Ledger) -> None:
        with self.file.lock():
            self.file.write(ledger.to_json())


def ledger_path(profile_path: Path) -> Path:
    return profile_path.with_name("ledger.json")


def store_for(memory_cfg, env: dict[str, str] | None = None) -> LedgerStore | None:
    """The ledger beside the profile, or None with ``memory.enabled: false``."""
    if not memory_cfg.enabled:
        return None
    from entropi.core.crypto import cipher_from_env

    return LedgerStore(ledger_path(memory_cfg.profile_path),
                       cipher_from_env(memory_cfg.encryption_key_env, env))
