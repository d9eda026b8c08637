"""Compaction: one window's transcript → the ledger, the rolling summary and the next prompt.

One structured request per window (:mod:`entropi.compaction.structured`): a JSON object with the
summary, facts, commitments, resolved promises, mood and profile update, schema-constrained
where the server can. Every part passes the gates; facts and promises said in the window are
also taken verbatim by the extractive path (:mod:`entropi.compaction.facts`), so the ledger
keeps them whatever the LLM writes. The prompt is rendered from a template
(:mod:`entropi.compaction.template`) by token shares: persona core whole, then promises, facts,
summary and memories.

The request is fitted to the secondary model's context (the embedded ``ctx_size`` or
``secondary_model.context_tokens``): the oldest turns are dropped first; the ledger stays.

Timing: ``start`` may run speculatively before the window ends; ``finish`` waits at most
``deadline_s`` from its own call. A late, failed or rejected answer falls back to the
extractive summary; a late answer that arrives afterwards becomes the rolling summary.
Each result carries the memory of *its own* window (never a previous one's).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from entropi.compaction.budget import PromptBudget
from entropi.compaction.facts import extract, prefer_shorter, window_words
from entropi.compaction.fallback import RECENT, previous_summary, strip_lead_ins
from entropi.compaction.fallback import extract as extract_parts
from entropi.compaction.structured import (
    MAX_TOKENS,
    RESPONSE_FORMAT,
    SYSTEM,
    Vetted,
    Vetter,
    parse_answer,
)
from entropi.compaction.template import render_prompt
from entropi.config import Config
from entropi.core.logs import get_logger
from entropi.llm.client import ChatClient, ChatError
from entropi.memory.ledger import Ledger, LedgerStore
from entropi.text.gates import role_reason
from entropi.text.said import Said
from entropi.text.speakable import make_speakable, sentences
from entropi.text.utterance import Utterance

log = get_logger(__name__)
CHARS_PER_TOKEN = 3.0  # conservative for English BPE: the request must never be refused
REQUEST_SLACK = 64  # chat-template tokens around the messages


@dataclass(frozen=True)
class CompactionResult:
    prompt: str  # the bare prompt; the engine wraps it as "<system> {prompt} <system>"
    tokens: int  # tokens of the *wrapped* prompt (what the budget covers)
    token_budget: int
    latency_ms: float  # start() → answer (or → fallback decision)
    backend: str
    fallback: str | None  # why the offline summary was used: "timeout", "http 500", "garbage"…
    memory: dict[str, Any] | None = None  # this window's journal/profile directive
    waited_ms: float = 0.0  # how long finish() blocked: the part of the pause compaction cost
    summary: str = ""
    rejected: dict[str, int] = field(default_factory=dict)  # gated-out parts, by reason
    trimmed_turns: int = 0  # transcript turns left out of the request to fit the context


class GarbageAnswer(Exception):
    pass


@dataclass
class _Job:
    started: float
    seen: int  # utterances the request saw (a speculative start sees fewer than finish)
    memories: str
    done_at: list[float] = field(default_factory=list)
    last_text: str = ""  # the last utterance as the request saw it (it may still grow)
    trimmed: int = 0
    words: str = ""  # the window's words as the request saw them: what a late answer is vetted on


class Compactor:
    """Builds each window's system prompt; one instance lives for the whole conversation."""

    def __init__(self, client: ChatClient | None, cfg: Config,
                 count_tokens: Callable[[str], int], deadline_s: float | None = None,
                 ledger_store: LedgerStore | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.client = client
        self.cfg = cfg
        self.section = cfg.secondary_model
        self.persona = cfg.conversation.base_persona.strip()
        self.budget = PromptBudget(self.persona, cfg.conversation.prompt_token_budget,
                                   count_tokens)
        self.deadline_s = (deadline_s or self.section.deadline_seconds
                           or cfg.voice.max_clip_seconds + 1.0)
        self.backend = client.backend if client else "offline"
        self.vetter = Vetter(cfg.conversation.persona_name, self.persona)
        self.store = ledger_store
        self.ledger = ledger_store.load() if ledger_store else Ledger()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.summary = ""  # the rolling summary (an accepted LLM answer, never extractive)
        self.window = self.ledger.window
        self.counts: Counter[str] = Counter()  # results, fallbacks, rejected parts
        self._jobs: dict[asyncio.Task[dict[str, Any]], _Job] = {}
        self._background: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ public API

    def start(self, transcript: list[Utterance], memories: str = "",
              previous_prompt: str = "") -> asyncio.Task[dict[str, Any]]:
        """Begin a compaction (may be speculative); returns the task to pass to finish()."""
        if not self.summary and previous_prompt and not self.ledger.items:
            self.summary = previous_summary(previous_prompt, self.persona)  # a fresh start
        job = _Job(time.monotonic(), len(transcript), memories,
                   last_text=transcript[-1].text if transcript else "",
                   words=window_words(transcript))
        work = (self._ask(list(transcript), memories, job) if self.client else _offline())
        task = asyncio.create_task(work, name="compaction")
        self._jobs[task] = job
        return task

    def discard(self, task: asyncio.Task[dict[str, Any]]) -> None:
        """Drop a speculative start that went stale (the talk resumed); no finish() follows."""
        if self._jobs.pop(task, None) is not None:
            task.cancel()

    async def finish(self, task: asyncio.Task[dict[str, Any]],
                     transcript: list[Utterance]) -> CompactionResult:
        """The new prompt within ``deadline_s``; never raises for LLM trouble."""
        t0 = time.monotonic()
        job = self._jobs.pop(task)
        answer, reason = await self._wait(task, job.words)
        # Gates, ledger merge, prompt rendering and the ledger write scale with the answer
        # and the ledger: in a thread, so the frame loop (playing the clip) never waits.
        return await asyncio.to_thread(self._settle, job, answer, reason, transcript, t0)

    def _settle(self, job: _Job, answer: dict[str, Any] | None, reason: str | None,
                transcript: list[Utterance], t0: float) -> CompactionResult:
        """Vet the answer, merge the ledger, render the prompt (blocking: run in a thread)."""
        words = window_words(transcript)
        vetted = self.vetter.vet(answer, words) if answer is not None else Vetted()
        if answer is not None and vetted.summary is None:
            reason = "garbage"  # the rest of the answer (facts, profile) may still count
            log.warning("llm_garbage", backend=self.backend, why=",".join(vetted.rejected))
        self.window = self.ledger.window = self.window + 1
        # Words said aloud can carry an injection too ("ignore all previous instructions").
        said = [s for s in _union(prefer_shorter(extract(transcript), vetted.said), [])
                if not role_reason(s.text, self.vetter.name)]
        self.ledger.touch(words, self.window)
        self.ledger.merge(said, self.window, self.clock(), vetted.resolved, words)
        if vetted.summary is not None:
            self.summary = vetted.summary
            tail = unseen_agent_text(transcript, job.seen, job.last_text)
            summary = f"{vetted.summary} {RECENT} {make_speakable(tail)}" if tail else \
                vetted.summary
        else:
            if reason != "offline":
                log.warning("compaction_fallback", reason=reason, backend=self.backend)
            summary = " ".join(s for s in sentences(" ".join([*extract_parts(transcript),
                                                               self.summary]))
                               if not role_reason(s, self.vetter.name))
        prompt = render_prompt(self.budget, self.ledger, summary, job.memories, words)
        if self.store is not None:
            try:
                self.store.save(self.ledger)
            except OSError as exc:  # a full disk must not stop the conversation
                log.warning("ledger_write_failed", path=str(self.store.path), error=str(exc))
        latency = ((job.done_at[0] if job.done_at else time.monotonic()) - job.started
                   if reason is None else time.monotonic() - job.started)
        self._count(reason, vetted)
        result = CompactionResult(
            prompt=prompt, tokens=self.budget.tokens(prompt), token_budget=self.budget.budget,
            latency_ms=latency * 1000, backend=self.backend, fallback=reason,
            memory=self._directive(vetted, said, summary),
            waited_ms=(time.monotonic() - t0) * 1000, summary=vetted.summary or "",
            rejected=dict(vetted.rejected), trimmed_turns=job.trimmed)
        log.info("compaction_done", backend=self.backend, fallback=reason, tokens=result.tokens,
                 token_budget=result.token_budget, latency_ms=round(result.latency_ms, 1),
                 waited_ms=round(result.waited_ms, 1), rejected=sum(vetted.rejected.values()),
                 ledger=len(self.ledger.items))
        return result

    async def compact(self, transcript: list[Utterance], memories: str = "",
                      previous_prompt: str = "") -> CompactionResult:
        """start() + finish() in one call (the CLI and benchmarks)."""
        return await self.finish(self.start(transcript, memories, previous_prompt), transcript)

    async def drain(self, timeout_s: float | None = None) -> None:
        """Wait (bounded) for late answers still running."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout_s)

    def recall_query(self, transcript: list[Utterance]) -> str:
        """What retrieval searches for: the window's words (both speakers) and the ledger."""
        return f"{window_words(transcript)} {self.ledger.query_words()}".strip()

    async def aclose(self) -> None:
        """Cancel late requests still running (at shutdown)."""
        pending = [*self._background, *self._jobs]
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # ------------------------------------------------------------------ the request

    @property
    def context_tokens(self) -> int:
        s = self.section
        if s.context_tokens is not None:
            return s.context_tokens
        return s.embedded.ctx_size if s.backend != "openrouter" else 16384

    def max_tokens(self) -> int:
        return min(max(self.section.max_tokens, MAX_TOKENS), self.context_tokens // 2)

    def messages(self, transcript: list[Utterance], memories: str,
                 previous: str) -> tuple[list[dict[str, str]], int]:
        """The request, fitted to the model's context; also how many turns were left out."""
        system = SYSTEM.format(name=self.cfg.conversation.persona_name,
                               words=self._summary_words())
        head = []
        if previous:
            head.append(f"Previous summary: {previous}")
        known = self.ledger.query_words()
        if known:
            head.append(f"Already known: {known}")
        if memories.strip():
            head.append(f"Relevant memories: {memories.strip()}")
        room = (self.context_tokens - self.max_tokens() - REQUEST_SLACK
                - _tokens(system) - _tokens("\n\n".join(head)))
        lines, dropped = fit_turns([u.render() for u in transcript], room)
        user = [*head, "New conversation:\n" + "\n".join(lines)]
        return [{"role": "system", "content": system},
                {"role": "user", "content": "\n\n".join(user)}], dropped

    def _summary_words(self) -> int:
        """Words that fit the summary's share, from this tokenizer's words-per-token ratio."""
        ratio = len(self.persona.split()) / max(1, self.budget.count(self.persona))
        return max(10, min(60, int(0.4 * self.budget.spare_tokens * ratio)))

    async def _ask(self, transcript: list[Utterance], memories: str,
                   job: _Job) -> dict[str, Any]:
        assert self.client is not None
        # Retries must fit the time the caller will wait: speculative lead + deadline.
        retry_deadline = job.started + self.section.speculative_seconds + self.deadline_s
        messages, job.trimmed = self.messages(transcript, memories, self.summary)
        if job.trimmed:
            log.info("compaction_request_trimmed", turns=job.trimmed,
                     context_tokens=self.context_tokens)
        try:
            reply = await self.client.complete(messages, max_tokens=self.max_tokens(),
                                               temperature=self.section.temperature,
                                               response_format=RESPONSE_FORMAT,
                                               retry_deadline=retry_deadline)
        finally:
            job.done_at.append(time.monotonic())
        # Text work scales with the answer: in a thread, so the frame loop never waits on it.
        return await asyncio.to_thread(parse_answer, reply.text, truncated=reply.truncated)

    async def _wait(self, task: asyncio.Task[dict[str, Any]], words: str
                    ) -> tuple[dict[str, Any] | None, str | None]:
        if self.client is None:
            return None, "offline"
        try:
            done, _ = await asyncio.wait({task}, timeout=self.deadline_s)
        except asyncio.CancelledError:  # shutdown while waiting: nobody wants the answer
            task.cancel()
            raise
        if not done:
            task.add_done_callback(partial(self._keep_late, words))
            self._track(task)
            return None, "timeout"
        if task.cancelled():
            return None, "cancelled"
        exc = task.exception()
        if isinstance(exc, ChatError):
            return None, exc.reason
        if exc is not None:
            log.error("compaction_bug", error=repr(exc))
            return None, f"error {type(exc).__name__}"
        return task.result(), None

    # ------------------------------------------------------------------ results

    def _directive(self, vetted: Vetted, said: list[Said], summary: str) -> dict[str, Any]:
        """This window's memory: one journal entry per fact or commitment (all grounded)."""
        directive: dict[str, Any] = {
            "summary": strip_lead_ins(" ".join(sentences(summary)[:2])),
            "facts": [s.text for s in said if s.kind == "fact"],
            "commitments": [s.text for s in said if s.kind == "commitment"],
        }
        if vetted.mood:
            directive["emotion"] = vetted.mood
        if vetted.profile and self.section.memory_directive:
            directive["profile_update"] = vetted.profile
        return directive

    def _count(self, reason: str | None, vetted: Vetted) -> None:
        self.counts["results"] += 1
        if reason is not None:
            self.counts["fallbacks"] += 1
        for why, n in vetted.rejected.items():
            self.counts[f"rejected:{why}"] += n
        if vetted.rejected:
            log.info("llm_output_rejected", **{k.replace(" ", "_"): v
                                               for k, v in vetted.rejected.items()})

    def _keep_late(self, words: str, task: asyncio.Task[dict[str, Any]]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        late = self.vetter.vet(task.result(), words)  # only the summary is used from it
        if late.summary:
            self.summary = late.summary
            log.info("late_answer_kept", chars=len(late.summary))

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)


async def _offline() -> dict[str, Any]:
    return {}  # no client: finish() builds the extractive prompt


def _tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN) + 1


def fit_turns(lines: list[str], room: int) -> tuple[list[str], int]:
    """The most recent turns that fit ``room`` tokens (estimated); a single turn longer than
    the room keeps its last words. Returns the lines and how many turns were dropped."""
    kept: list[str] = []
    for line in reversed(lines):
        cost = _tokens(line) + 1
        if cost <= room:
            kept.append(line)
            room -= cost
            continue
        if not kept and room > 16:  # one huge turn: its end is the freshest part
            kept.append("… " + line[-int((room - 2) * CHARS_PER_TOKEN):].split(" ", 1)[-1])
        break
    kept.reverse()
    return kept, len(lines) - len(kept)


def _union(first: list[Said], second: list[Said]) -> list[Said]:
    """The extractive items, then the LLM's new ones; each text once."""
    seen: set[str] = set()
    out = []
    for s in [*first, *second]:
        if s.text.casefold() not in seen:
            seen.add(s.text.casefold())
            out.append(s)
    return out


def unseen_agent_text(transcript: list[Utterance], seen: int, last_text: str) -> str:
    """What the agent said after a speculative start saw ``seen`` utterances, the last of
    them as ``last_text``: later utterances, plus the words that utterance gained since."""
    texts = [u.text for u in transcript[seen:] if u.speaker == "agent" and u.text]
    if 0 < seen <= len(transcript):
        grown = transcript[seen - 1]
        if grown.speaker == "agent" and grown.text.startswith(last_text):
            texts.insert(0, grown.text[len(last_text):])
    return " ".join(t.strip() for t in texts if t.strip())
