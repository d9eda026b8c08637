"""Finished user turns → words, in one worker thread that owns the recogniser.

The frame loop only hands over a turn's audio (``submit``) and later reads the result when
it is done; it never waits on the recogniser. Failures degrade to today's marker
("[user spoke 2.1 s]"): a crash or a hang is logged once and the conversation goes on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from dataclasses import dataclass

import numpy as np

from entropi.audio.resample import to_speech_rate
from entropi.core.logs import get_logger
from entropi.hearing.asr import UserTranscriber
from entropi.text.utterance import Utterance

log = get_logger(__name__)


@dataclass
class PendingTurn:
    """A user turn heard in the window; its words arrive from the worker when ready."""

    seconds: float
    name: str | None
    future: concurrent.futures.Future[str | None] | None = None

    @property
    def ready(self) -> bool:
        return self.future is None or self.future.done()

    def marker(self) -> Utterance:
        """The turn without its words: "[user spoke 2.1 s]"."""
        return Utterance("user", "", self.seconds, self.name)

    def utterance(self) -> Utterance:
        text = None
        if self.future is not None and self.future.done() and not self.future.cancelled():
            text = self.future.result()  # the worker never raises: None on failure
        return Utterance("user", text or "", self.seconds, self.name)


class TurnTranscriber:
    def __init__(self, transcriber: UserTranscriber, turn_timeout_s: float) -> None:
        self.transcriber = transcriber
        self.turn_timeout_s = turn_timeout_s
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="asr")
        self._busy_since: float | None = None
        self._logged: set[str] = set()
        self.turns = 0
        self.failures = 0
        self.latency_ms: list[float] = []  # submit → words ready (queueing included)
        self.busy_ms: list[float] = []  # time inside the recogniser

    def submit(self, pcm24k: np.ndarray) -> concurrent.futures.Future[str | None]:
        if self.hung:
            self._once("asr_hung", "a transcription ran past asr.turn_timeout_seconds; "
                       "new user turns stay markers until it returns",
                       timeout_s=self.turn_timeout_s)
            done: concurrent.futures.Future[str | None] = concurrent.futures.Future()
            done.set_result(None)
            return done
        return self._pool.submit(self._run, pcm24k, time.perf_counter())

    @property
    def hung(self) -> bool:
        busy = self._busy_since
        return busy is not None and time.monotonic() - busy > self.turn_timeout_s

    def _run(self, pcm24k: np.ndarray, queued: float) -> str | None:
        self._busy_since = time.monotonic()
        started = time.perf_counter()
        try:
            text = self.transcriber.transcribe(to_speech_rate(pcm24k))
        except Exception as exc:  # a broken model or input must not end the conversation
            self.failures += 1
            self._once("asr_failed", "transcription failed; the turn stays a marker",
                       error=f"{type(exc).__name__}: {exc}")
            return None
        finally:
            self._busy_since = None
            self.busy_ms.append((time.perf_counter() - started) * 1e3)
        self.turns += 1
        self.latency_ms.append((time.perf_counter() - queued) * 1e3)
        return text

    def _once(self, event: str, message: str, **kw) -> None:
        if event not in self._logged:
            self._logged.add(event)
            log.warning(event, message=message, **kw)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


async def settle(turns: list[PendingTurn], timeout_s: float) -> int:
    """Wait (without blocking the loop) up to ``timeout_s`` for turns still transcribing;
    returns how many are still pending after it."""
    waiting = [asyncio.wrap_future(t.future) for t in turns if not t.ready and t.future]
    if waiting and timeout_s > 0:
        await asyncio.wait(waiting, timeout=timeout_s)
    return sum(not t.ready for t in turns)
