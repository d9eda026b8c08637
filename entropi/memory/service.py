"""``MemoryService``: the daemon's single handle on journal, profile and retrieval.

``submit`` only puts a record on a bounded asyncio queue (overflow drops the oldest and
counts it), so the audio loop never waits on disk. Two background tasks drain it: the
journal writer (decide, append + fsync in a worker thread, index) and the profile
writer (coalesce updates, merge, atomic rewrite). ``stop`` flushes both queues.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from entropi.config import MemorySection
from entropi.core.crypto import cipher_from_env
from entropi.core.files import ensure_private_dir
from entropi.core.logs import get_logger
from entropi.memory.entry import JournalEntry
from entropi.memory.journal import Journal
from entropi.memory.planner import EntryPlanner, build_entry
from entropi.memory.profile import PersonaProfile, ProfileStore, ProfileUpdate, merge
from entropi.memory.record import WindowRecord
from entropi.memory.retrieval import BM25Index

log = get_logger(__name__)
TOKENS_PER_WORD = 1.3  # rough BPE ratio for English; budgets are approximate by design
SESSION_END_IMPORTANCE = 0.5


def approx_tokens(text: str) -> int:
    """Token estimate used for ``retrieval_token_budget``: ceil(words × 1.3)."""
    return math.ceil(len(text.split()) * TOKENS_PER_WORD)


def fit_tokens(text: str, budget: int) -> str:
    """``text`` cut to at most ``budget`` approximate tokens, on a word boundary."""
    words = text.split()
    keep = int(budget / TOKENS_PER_WORD)
    return " ".join(words) if keep >= len(words) else " ".join(words[:keep]) + "…"


@dataclass
class _SessionEnd:
    summary: str
    done: asyncio.Future[None]


@dataclass
class _Stats:
    entries_written: int = 0
    entries_skipped: int = 0
    profile_updates: int = 0
    errors: int = 0
    dropped: int = 0
    skipped_by_reason: dict[str, int] = field(default_factory=dict)


class MemoryService:
    def __init__(self, cfg: MemorySection, persona_name: str,
                 env: dict[str, str] | None = None) -> None:
        self.cfg = cfg
        self.persona = persona_name
        self._env = env
        self._stats = _Stats()
        self._index = BM25Index()
        # Searches run in a worker thread (recall) while the writer adds entries.
        self._index_lock = threading.Lock()
        self._profile = PersonaProfile(persona=persona_name)
        self._planner = EntryPlanner(persona_name, cfg.importance_threshold,
                                     cfg.cooldown_seconds, cfg.cooldown_bypass_importance)
        self._queue: asyncio.Queue[WindowRecord | _SessionEnd] | None = None
        self._profile_queue: asyncio.Queue[ProfileUpdate] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_window = 0
        self._session_tags: Counter[str] = Counter()  # for the session-end reflection
        self._purge_stamp = b""
        self._reload_task: asyncio.Task[None] | None = None
        self.journal: Journal | None = None
        self.profile_store: ProfileStore | None = None
        self.running = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open and validate journal and profile (MemoryFileError on a corrupt file), index
        the journal, start the writers. With ``memory.enabled: false`` nothing is touched."""
        if self.running or not self.cfg.enabled:
            return
        cipher = cipher_from_env(self.cfg.encryption_key_env, self._env)
        self.journal = Journal(self.cfg.journal_dir, cipher)
        self.profile_store = ProfileStore(self.cfg.profile_path, self.persona, cipher)
        self._purge_stamp = self.journal.purge_stamp()
        entries, profile = await asyncio.to_thread(self._open_files)
        self._install(entries, profile)
        if entries:  # the cooldown carries across restarts
            self._planner.last_written = entries[-1].timestamp
        self._queue = asyncio.Queue(maxsize=self.cfg.queue_size)
        self._profile_queue = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._journal_writer(), name="memory-journal"),
                       asyncio.create_task(self._profile_writer(), name="memory-profile")]
        self.running = True
        log.info("memory_started", entries=len(entries), journal=str(self.cfg.journal_dir),
                 encrypted=cipher is not None)

    def _install(self, entries: list[JournalEntry], profile: PersonaProfile) -> None:
        index = BM25Index()
        for entry in entries:
            index.add(entry)
        self._index, self._profile = index, profile

    async def reload(self) -> None:
        """Re-read journal and profile after ``entropi memory purge/forget`` deleted
        something, so nothing deleted reaches a prompt again."""
        assert self.journal is not None
        stamp = self.journal.purge_stamp()
        entries, profile = await asyncio.to_thread(self._open_files)
        self._install(entries, profile)
        self._purge_stamp = stamp
        log.info("memory_reloaded_after_purge", entries=len(entries))

    def _purged_since_load(self) -> bool:
        if self.journal is None or self.journal.purge_stamp() == self._purge_stamp:
            return False
        if self._reload_task is None or self._reload_task.done():
            self._reload_task = asyncio.get_running_loop().create_task(self.reload())
        return True

    def _open_files(self) -> tuple[list[JournalEntry], PersonaProfile]:
        assert self.journal is not None and self.profile_store is not None
        ensure_private_dir(self.cfg.journal_dir)
        ensure_private_dir(self.cfg.profile_path.parent)
        return self.journal.read_all(), self.profile_store.load()

    async def stop(self) -> None:
        """Flush everything queued (each append fsync'd), then stop. Safe to call twice."""
        if not self.running:
            return
        assert self._queue is not None and self._profile_queue is not None
        await self._queue.join()
        await self._profile_queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._reload_task is not None:
            await asyncio.gather(self._reload_task, return_exceptions=True)
        self._tasks = []
        self.running = False
        log.info("memory_stopped", **self.stats())

    # ------------------------------------------------------------------ daemon API

    def submit(self, record: WindowRecord) -> None:
        """Queue a finished window; never blocks. A full queue drops its oldest record."""
        if not self.running or self._queue is None:
            return
        self._last_window = max(self._last_window, record.window)
        if self._queue.full():
            try:
                dropped = self._queue.get_nowait()
                self._queue.task_done()
                if isinstance(dropped, _SessionEnd):  # never lose the session summary
                    self._queue.put_nowait(dropped)
                    return self._drop(record)
                self._drop(dropped)
            except asyncio.QueueEmpty:
                pass
        self._queue.put_nowait(record)

    def _drop(self, record: WindowRecord) -> None:
        self._stats.dropped += 1
        log.warning("memory_queue_full_dropped", window=record.window,
                    queue_size=self.cfg.queue_size)

    async def flush(self) -> None:
        """Wait until everything submitted so far is on disk and indexed (benchmarks)."""
        if self.running and self._queue is not None and self._profile_queue is not None:
            await self._queue.join()
            await self._profile_queue.join()

    async def write_session_end(self, summary: str) -> None:
        """The session's final entry, always written; returns once it is on disk. A disk
        error is logged and counted in ``stats()['errors']``, never raised, so the daemon's
        shutdown path always reaches ``stop()``."""
        if not self.running or self._queue is None:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put(_SessionEnd(summary, done))
        await done

    async def recall(self, query: str) -> str:
        """``context_for`` off the event loop: a search over 10k entries takes milliseconds."""
        return await asyncio.to_thread(self.context_for, query)

    def context_for(self, query: str) -> str:
        """Relevant journal entries plus a condensed profile snapshot for the compaction
        prompt, within ``retrieval_token_budget`` approximate tokens (see approx_tokens).
        The best memory comes first, then the profile, then further memories."""
        budget = self.cfg.retrieval_token_budget
        if not self.cfg.enabled or budget <= 0:
            return ""
        if self._purged_since_load():  # stale copy may hold deleted text: offer nothing
            return ""
        with self._index_lock:
            found = self._index.search(query, self.cfg.retrieval_entries)
        memories = [self._memory_line(e) for e in found]
        snapshot = self._profile.snapshot()
        candidates = memories[:1] + ([f"Profile: {snapshot}"] if snapshot else []) + memories[1:]
        lines: list[str] = []
        left = budget
        for line in candidates:
            cost = approx_tokens(line)
            if cost <= left:
                lines.append(line)
                left -= cost
            elif left >= 4:  # a cut line still carries its most important first words
                lines.append(fit_tokens(line, left))
                break
            else:
                break
        return "\n".join(lines)

    @staticmethod
    def _memory_line(entry: JournalEntry) -> str:
        line = f"- {entry.timestamp:%Y-%m-%d}: {entry.summary}"
        promised = [c for c in entry.commitments if c != entry.summary]
        if promised:  # a per-commitment entry's summary is the promise itself
            line += " (promised: " + "; ".join(promised) + ")"
        return line

    def stats(self) -> dict[str, Any]:
        s = self._stats
        return {"entries_written": s.entries_written, "entries_skipped": s.entries_skipped,
                "profile_updates": s.profile_updates, "errors": s.errors,
                "queued": self._queue.qsize() if self._queue else 0, "dropped": s.dropped,
                "indexed": len(self._index), "skipped_by_reason": dict(s.skipped_by_reason)}

    @property
    def profile(self) -> PersonaProfile:
        return self._profile

    # ------------------------------------------------------------------ writers

    async def _write(self, entry: JournalEntry) -> None:
        assert self.journal is not None
        await asyncio.to_thread(self._append_and_index, entry)
        self._stats.entries_written += 1
        self._session_tags.update(entry.tags)

    def _append_and_index(self, entry: JournalEntry) -> None:
        # In the writer thread: waiting for a running search never blocks the event loop.
        assert self.journal is not None
        self.journal.append(entry)
        with self._index_lock:
            self._index.add(entry)

    async def _journal_writer(self) -> None:
        assert self._queue is not None and self._profile_queue is not None
        while True:
            item = await self._queue.get()
            try:
                if isinstance(item, _SessionEnd):
                    await self._session_end(item)
                    continue
                decision = self._planner.decide(item)
                if decision.profile_update is not None:
                    self._profile_queue.put_nowait(decision.profile_update)
                if item.people:  # the roster: first/last seen, times talked
                    self._profile_queue.put_nowait(ProfileUpdate(talked=list(item.people)))
                if decision.entry is None:
                    self._stats.entries_skipped += 1
                    reasons = self._stats.skipped_by_reason
                    reasons[decision.reason] = reasons.get(decision.reason, 0) + 1
                    log.debug("memory_skipped", window=item.window, reason=decision.reason)
                else:
                    for entry in decision.entries:  # one per fact or commitment
                        await self._write(entry)
            except Exception as exc:  # a bad disk must not kill the writer or the daemon
                self._stats.errors += 1
                log.error("memory_write_failed", error=str(exc))
            finally:
                self._queue.task_done()

    async def _session_end(self, item: _SessionEnd) -> None:
        try:
            entry = build_entry(item.summary, self.persona, self._last_window,
                                datetime.now(UTC), extra_tags=("session-end",))
            entry = replace(entry, importance=max(entry.importance, SESSION_END_IMPORTANCE))
            reflection = session_reflection(entry.timestamp, self._session_tags,
                                            self._last_window)
            await self._write(entry)
            if reflection and self._profile_queue is not None:
                # Every session leaves a trace in the profile, LLM or not (flushed by stop()).
                self._profile_queue.put_nowait(ProfileUpdate(reflections=[reflection]))
            item.done.set_result(None)
        except Exception as exc:
            self._stats.errors += 1
            log.error("memory_session_end_failed", error=str(exc))
            item.done.set_result(None)

    async def _profile_writer(self) -> None:
        assert self._profile_queue is not None
        while True:
            updates = [await self._profile_queue.get()]
            while not self._profile_queue.empty():  # coalesce: one rewrite for a burst
                updates.append(self._profile_queue.get_nowait())
            try:
                self._profile = await asyncio.to_thread(self._apply, updates)
                self._stats.profile_updates += len(updates)
            except Exception as exc:
                self._stats.errors += 1
                log.error("profile_write_failed", error=str(exc))
            finally:
                for _ in updates:
                    self._profile_queue.task_done()

    def _apply(self, updates: list[ProfileUpdate]) -> PersonaProfile:
        assert self.profile_store is not None

        def change(profile: PersonaProfile) -> PersonaProfile:
            now = datetime.now(UTC)
            for update in updates:
                profile = merge(profile, update, now)
            return profile.model_copy(update={"persona": self.persona})

        return self.profile_store.update(change)


def session_reflection(when: datetime, tags: Counter[str], windows: int) -> str:
    """A one-line medium-term reflection on a session from its entries' tags."""
    if windows == 0:
        return ""
    topics = [t for t, _ in tags.most_common() if ":" not in t and t != "session-end"][:3]
    moods = [t.split(":", 1)[1] for t, _ in tags.most_common() if t.startswith("emotion:")]
    text = f"{when:%Y-%m-%d}: a conversation of {windows} windows"
    if topics:
        text += " about " + ", ".join(topics)
    if moods:
        text += f", mostly {moods[0]}"
    return text + "."
