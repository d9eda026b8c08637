"""Compaction: transcript + memories + previous prompt → the next window's system prompt.

The LLM writes only the rolling *summary*; the prompt is assembled here as
``base_persona + summary`` and fitted to the budget, so the persona core is verbatim by
construction and no LLM answer can overflow the context. The previous summary goes into
the request and the answer replaces it (a rolling summary, never a growing stack).

Timing: ``start`` may run speculatively before the window ends; ``finish`` waits at most
``deadline_s`` from its own call (the pause the thinking clip covers). If the answer is late,
failed or garbage, the offline extractive fallback is used, and a late answer that arrives
afterwards becomes the previous summary of the next compaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from entropi.config import Config
from entropi.llm.budget import PromptBudget
from entropi.llm.client import ChatClient, ChatError
from entropi.llm.directive import RESPONSE_FORMAT, directive_messages, parse_directive
from entropi.llm.fallback import RECENT, fallback_parts, previous_summary, strip_lead_ins
from entropi.llm.speakable import garbage_reason, make_speakable, sentences
from entropi.llm.transcript import Utterance, render_transcript
from entropi.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class CompactionResult:
    prompt: str  # the bare prompt; the engine wraps it as "<system> {prompt} <system>"
    tokens: int  # tokens of the *wrapped* prompt (what the budget covers)
    token_budget: int
    latency_ms: float  # start() → answer (or → fallback decision)
    backend: str
    fallback: str | None  # why the offline summary was used: "timeout", "http 500", "garbage"…
    memory: dict[str, Any] | None = None
    waited_ms: float = 0.0  # how long finish() blocked: the part of the pause compaction cost
    summary: str = ""


class GarbageAnswer(Exception):
    pass


@dataclass
class _Job:
    started: float
    seen: int  # utterances the request saw (a speculative start sees fewer than finish)
    previous: str
    memories: str
    memory_task: asyncio.Task[dict[str, Any] | None] | None = None
    done_at: list[float] = field(default_factory=list)
    late: str | None = None  # a late answer this job took over (handed back on discard)
    last_text: str = ""  # the last utterance as the request saw it (it may still grow)


_SYSTEM = (
    "You keep the running memory of {name}, a voice companion. Write a short summary of the "
    "conversation that {name} must remember to continue it: who the user is, what was "
    "discussed, what was promised, the mood. Merge the previous summary with the new "
    "conversation into one summary and drop what no longer matters. Write to {name} as "
    "'you'. At most {words} words of plain sentences: no preamble, no lists, no markdown, no "
    "quotes. Write only the summary."
)


class Compactor:
    """Builds each window's system prompt; one instance lives for the whole conversation."""

    def __init__(self, client: ChatClient | None, cfg: Config,
                 count_tokens: Callable[[str], int], deadline_s: float | None = None) -> None:
        self.client = client
        self.cfg = cfg
        self.section = cfg.secondary_model
        self.persona = cfg.conversation.base_persona.strip()
        self.budget = PromptBudget(self.persona, cfg.conversation.prompt_token_budget,
                                   count_tokens)
        self.deadline_s = (deadline_s or self.section.deadline_seconds
                           or cfg.voice.max_clip_seconds + 1.0)
        self.backend = client.backend if client else "offline"
        self._jobs: dict[asyncio.Task[str], _Job] = {}
        self._late_summary: str | None = None
        self._ready_memories: list[dict[str, Any]] = []
        self._background: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ public API

    def start(self, transcript: list[Utterance], memories: str = "",
              previous_prompt: str = "") -> asyncio.Task[str]:
        """Begin a compaction (may be speculative); returns the task to pass to finish()."""
        previous = previous_summary(previous_prompt, self.persona) if previous_prompt else ""
        late = self._late_summary
        if late:
            # The late LLM answer saw the last window; the fallback prompt did not.
            log.info("late_answer_used", chars=len(late))
            previous, self._late_summary = late, None
        job = _Job(time.monotonic(), len(transcript), previous, memories, late=late,
                   last_text=transcript[-1].text if transcript else "")
        work = (self._summarise(list(transcript), memories, previous, job) if self.client
                else _offline())
        task = asyncio.create_task(work, name="compaction")
        if self.client is not None and self.section.memory_directive:
            after = task if self.backend == "embedded" else None
            job.memory_task = asyncio.create_task(
                self._directive(list(transcript), memories, after), name="memory-directive")
            job.memory_task.add_done_callback(self._keep_memory)
        self._jobs[task] = job
        return task

    def discard(self, task: asyncio.Task[str]) -> None:
        """Drop a speculative start that went stale (the talk resumed); no finish() follows."""
        job = self._jobs.pop(task, None)
        if job is None:
            return
        task.cancel()
        if job.memory_task is not None:
            job.memory_task.cancel()
        if job.late and self._late_summary is None:
            self._late_summary = job.late  # unused after all: the next start takes it

    async def finish(self, task: asyncio.Task[str],
                     transcript: list[Utterance]) -> CompactionResult:
        """The new prompt within ``deadline_s``; never raises for LLM trouble."""
        t0 = time.monotonic()
        job = self._jobs.pop(task)
        summary, reason = None, None
        if self.client is None:
            reason = "offline"
        else:
            try:
                done, _ = await asyncio.wait({task}, timeout=self.deadline_s)
            except asyncio.CancelledError:  # shutdown while waiting: nobody wants the answer
                task.cancel()
                if job.memory_task is not None:
                    job.memory_task.cancel()
                raise
            if not done:
                reason = "timeout"
                task.add_done_callback(self._keep_late)
                self._track(task)
            elif task.cancelled():
                reason = "cancelled"
            elif isinstance(task.exception(), ChatError):
                reason = task.exception().reason  # type: ignore[union-attr]
            elif isinstance(task.exception(), GarbageAnswer):
                reason = "garbage"
            elif task.exception() is not None:
                reason = f"error {type(task.exception()).__name__}"
                log.error("compaction_bug", error=repr(task.exception()))
            else:
                summary = task.result()
        if summary is not None:
            tail = unseen_agent_text(transcript, job.seen, job.last_text)
            parts = [summary]
            if tail:  # said after a speculative start: the LLM never saw it
                parts.append(f"{RECENT} {make_speakable(tail)}")
            prompt = self.budget.assemble(parts)
            latency = (job.done_at[0] if job.done_at else time.monotonic()) - job.started
        else:
            if reason != "offline":
                log.warning("compaction_fallback", reason=reason, backend=self.backend)
            prompt = self.budget.assemble(fallback_parts(transcript, job.memories,
                                                         job.previous))
            latency = time.monotonic() - job.started
        waited = time.monotonic() - t0
        result = CompactionResult(
            prompt=prompt, tokens=self.budget.tokens(prompt),
            token_budget=self.budget.budget, latency_ms=latency * 1000, backend=self.backend,
            fallback=reason, memory=self._take_memory(job), waited_ms=waited * 1000,
            summary=summary or "")
        log.info("compaction_done", backend=self.backend, fallback=reason, tokens=result.tokens,
                 token_budget=result.token_budget, latency_ms=round(result.latency_ms, 1),
                 waited_ms=round(result.waited_ms, 1))
        return result

    async def compact(self, transcript: list[Utterance], memories: str = "",
                      previous_prompt: str = "") -> CompactionResult:
        """start() + finish() in one call (the CLI and benchmarks)."""
        return await self.finish(self.start(transcript, memories, previous_prompt), transcript)

    async def drain(self, timeout_s: float | None = None) -> None:
        """Wait (bounded) for late answers and memory directives still running."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout_s)

    def take_memories(self) -> list[dict[str, Any]]:
        """Directives that arrived after their result was returned (e.g. at shutdown)."""
        ready, self._ready_memories = self._ready_memories, []
        return ready

    async def aclose(self) -> None:
        """Cancel late requests still running (at shutdown)."""
        pending = [*self._background, *self._jobs]
        for job in self._jobs.values():
            if job.memory_task is not None:
                pending.append(job.memory_task)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # ------------------------------------------------------------------ internals

    def messages(self, transcript: list[Utterance], memories: str,
                 previous: str) -> list[dict[str, str]]:
        words = self._summary_words()
        system = _SYSTEM.format(name=self.cfg.conversation.persona_name, words=words)
        user = []
        if previous:
            user.append(f"Previous summary: {previous}")
        if memories.strip():
            user.append(f"Relevant memories: {memories.strip()}")
        user.append(f"New conversation:\n{render_transcript(transcript)}")
        user.append("Updated summary:")
        return [{"role": "system", "content": system},
                {"role": "user", "content": "\n\n".join(user)}]

    def _summary_words(self) -> int:
        """Words that fit the spare budget, from this tokenizer's words-per-token ratio."""
        ratio = len(self.persona.split()) / max(1, self.budget.count(self.persona))
        return max(10, min(120, int(self.budget.spare_tokens * ratio)))

    async def _summarise(self, transcript: list[Utterance], memories: str, previous: str,
                         job: _Job) -> str:
        assert self.client is not None
        # Retries must fit the time the caller will wait: speculative lead + deadline.
        retry_deadline = job.started + self.section.speculative_seconds + self.deadline_s
        try:
            # ~2 tokens per word is plenty for the asked length and bounds a looping model.
            max_tokens = min(self.section.max_tokens, 2 * self._summary_words() + 16)
            reply = await self.client.complete(self.messages(transcript, memories, previous),
                                               max_tokens=max_tokens,
                                               retry_deadline=retry_deadline)
        finally:
            job.done_at.append(time.monotonic())
        # Text work scales with the answer: in a thread, so the frame loop never waits on it.
        return await asyncio.to_thread(self._clean_summary, reply.text, reply.truncated)

    def _clean_summary(self, text: str, truncated: bool) -> str:
        """The speakable, de-duplicated summary; GarbageAnswer if nothing usable is left."""
        raw_chars = len(text)
        text = _drop_partial_sentence(text) if truncated else text
        summary = strip_lead_ins(make_speakable(text))
        if self.persona:
            summary = " ".join(summary.replace(self.persona, " ").split())
        summary = _unique_sentences(summary)  # small models loop; keep each thought once
        # Judge only what could fit the prompt: a runaway answer is cut by the budget anyway.
        summary = " ".join(summary.split()[:4 * self._summary_words()])
        why = garbage_reason(summary)
        if why:
            log.warning("llm_garbage", backend=self.backend, why=why, chars=raw_chars)
            raise GarbageAnswer(why)
        return summary

    async def _directive(self, transcript: list[Utterance], memories: str,
                         after: asyncio.Task[str] | None) -> dict[str, Any] | None:
        assert self.client is not None
        if after is not None:
            # One local CPU server: run after the prompt so the two never share the cores.
            await asyncio.wait({after})
        try:
            reply = await self.client.complete(directive_messages(transcript, memories),
                                               max_tokens=max(self.section.max_tokens, 400),
                                               temperature=0.0,
                                               response_format=RESPONSE_FORMAT)
        except ChatError as exc:
            log.info("memory_directive_failed", reason=exc.reason)
            return None
        directive = await asyncio.to_thread(parse_directive, reply.text)
        if directive is None:
            log.info("memory_directive_unparsable", chars=len(reply.text))
        return directive

    def _keep_memory(self, task: asyncio.Task[dict[str, Any] | None]) -> None:
        if not task.cancelled() and task.exception() is None and task.result() is not None:
            self._ready_memories.append(task.result())  # type: ignore[arg-type]

    def _take_memory(self, job: _Job) -> dict[str, Any] | None:
        """The oldest directive that is ready; a late one rides along with the next result."""
        if job.memory_task is not None and not job.memory_task.done():
            self._track(job.memory_task)
        return self._ready_memories.pop(0) if self._ready_memories else None

    def _keep_late(self, task: asyncio.Task[str]) -> None:
        if not task.cancelled() and task.exception() is None:
            self._late_summary = task.result()
            log.info("late_answer_kept", chars=len(self._late_summary))

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)


async def _offline() -> str:
    return ""  # no client: finish() builds the extractive prompt


def _drop_partial_sentence(text: str) -> str:
    """An answer cut by max_tokens ends mid-sentence; a half thought misleads the model."""
    text = text.rstrip()
    end = max(text.rfind(". "), text.rfind("! "), text.rfind("? "), text.rfind(".\n"))
    if text[-1:] in ".!?" or end < 0:
        return text
    return text[:end + 1]


def _unique_sentences(text: str) -> str:
    """Drop sentences that add almost no new words (exact or near repeats of earlier ones):
    a looping small model keeps its first, useful sentences instead of being discarded."""
    seen: set[str] = set()
    kept = []
    for s in sentences(text):
        words = {w.strip(".,!?;:").lower() for w in s.split()} - {""}
        if kept and len(words - seen) < 0.3 * len(words):
            continue
        seen |= words
        kept.append(s)
    return " ".join(kept)


def unseen_agent_text(transcript: list[Utterance], seen: int, last_text: str) -> str:
    """What the agent said after a speculative start saw ``seen`` utterances, the last of
    them as ``last_text``: later utterances, plus the words that utterance gained since."""
    texts = [u.text for u in transcript[seen:] if u.speaker == "agent" and u.text]
    if 0 < seen <= len(transcript):
        grown = transcript[seen - 1]
        if grown.speaker == "agent" and grown.text.startswith(last_text):
            texts.insert(0, grown.text[len(last_text):])
    return " ".join(t.strip() for t in texts if t.strip())
