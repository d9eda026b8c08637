"""PersonaPlexController: the window state machine.

    PRIMING ─▶ LIVE ─(pause / max / forced cut)─▶ THINKING ─(prompt primed, clip done)─▶ LIVE …

The input audio is the clock: every input frame yields exactly one output frame — model
audio in LIVE, a thinking clip (or its gap fill) in THINKING. Compaction, memory extraction
and re-priming run as one background "handover" task while the clip plays; the engine
worker thread is free for it because nothing steps the model during THINKING.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from entropi.audio import ClipPlayer, Cut, PauseDetector
from entropi.audio.transport import AudioTransport, active_speakers
from entropi.config import Config
from entropi.constants import FRAME_SECONDS
from entropi.llm import CompactionResult, Compactor, Utterance
from entropi.logs import get_logger
from entropi.memory import MemoryService, WindowRecord
from entropi.transcript import WindowTranscript, append_window, render

log = get_logger(__name__)

# Pause-triggered speculative compactions per window: a window with many short silences
# must not turn into a stream of LLM requests.
MAX_PAUSE_SPECULATIONS = 1



def _late_or_missing(audio: AudioTransport) -> int:
    """Frames the speaker did not get in time: device underruns + frames the loop picked up late.

    The controller itself always has a source for every frame (model audio, clip or gap fill),
    so dead air can only come from the loop falling behind the audio clock.
    """
    s = audio.stats()
    return s.underruns + s.late_frames


class State(enum.Enum):
    PRIMING = "priming"
    LIVE = "live"
    THINKING = "thinking"
    STOPPED = "stopped"


@dataclass
class WindowStats:
    number: int
    started: float  # perf_counter, for durations
    opened_at: datetime  # wall clock, for the journal and the transcript file
    end_reason: str = ""
    frames: int = 0
    seconds: float = 0.0
    handover_frames: int = 0
    dead_air_frames: int = 0
    compaction_ms: float = 0.0
    fallback: str | None = None
    prompt_tokens: int = 0
    restart_ms: float = 0.0
    handover_ms: float = 0.0
    speculative: bool = False


@dataclass
class RunTotals:
    windows: int = 0
    frames: int = 0
    live_frames: int = 0
    dead_air_frames: int = 0
    fallbacks: int = 0
    prompts: deque[str] = field(default_factory=lambda: deque(maxlen=1_000))
    handover_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    # Per-frame samples: bounded so a run of hours keeps flat memory.
    overhead_ms: deque[float] = field(default_factory=lambda: deque(maxlen=20_000))
    compaction_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    restart_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    clips_played: int = 0


class EngineLike:
    """What the controller needs from :class:`entropi.engine.EngineWorker` (duck-typed)."""

    async def step(self, pcm: np.ndarray): ...  # -> FrameOut(pcm, token, text)
    async def prime(self, prompt: str): ...  # -> PrimeStats(ms, tokens, passes)


class PersonaPlexController:
    def __init__(
        self,
        cfg: Config,
        engine: EngineLike,
        audio: AudioTransport,
        compactor: Compactor,
        memory: MemoryService,
        player: ClipPlayer,
        *,
        max_windows: int | None = None,
        on_window: Callable[[WindowStats, State], None] | None = None,
        on_frame: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.engine = engine
        self.audio = audio
        self.compactor = compactor
        self.memory = memory
        self.player = player
        self.max_windows = max_windows
        self.on_window = on_window or (lambda w, s: None)
        self.on_frame = on_frame or (lambda: None)
        self.detector = PauseDetector(cfg.window)
        self.state = State.PRIMING
        self.prompt = cfg.conversation.first_prompt
        self.totals = RunTotals()
        self.window: WindowStats | None = None
        self.transcript = WindowTranscript()
        self._stop = asyncio.Event()
        self._spec: asyncio.Task[asyncio.Task[str]] | None = None
        self._handover: asyncio.Task[CompactionResult] | None = None
        self._fast = bool(cfg.audio.fast and cfg.audio.input == "wav")
        self._spec_at = max(0.0, cfg.window.max_seconds - cfg.secondary_model.speculative_seconds)
        self._spec_on_pause = False
        self._pause_specs = 0  # pause-triggered starts this window (each costs an LLM call)

    # ------------------------------------------------------------------ control

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> RunTotals:
        """Prime the first window, then converse until stopped, input ends or max_windows."""
        stats = await self._prime(self.prompt, window=1)
        self.totals.prompts.append(self.prompt)
        self._open_window(restart_ms=stats.ms, tokens=stats.tokens)
        while not self._stop.is_set():
            pcm = await self.audio.read_frame()
            if pcm is None:
                log.info("input ended", frames=self.totals.frames)
                break
            t0 = time.perf_counter()
            if self.state is State.LIVE:
                model_s = await self._live_frame(pcm)
            else:
                model_s = await self._thinking_frame()  # pacing, excluded like model time
            self.totals.frames += 1
            self.totals.overhead_ms.append((time.perf_counter() - t0 - model_s) * 1e3)
            self.on_frame()
            if self.max_windows is not None and self.totals.windows >= self.max_windows \
                    and self.state is State.LIVE and self.window and self.window.frames == 0:
                break
        await self._drain_handover()
        self.state = State.STOPPED
        return self.totals

    # ------------------------------------------------------------------ frames

    async def _live_frame(self, pcm: np.ndarray) -> float:
        assert self.window is not None
        t_model = time.perf_counter()
        out = await self.engine.step(pcm)
        model_s = time.perf_counter() - t_model
        self.audio.write_frame(out.pcm)
        self.window.frames += 1
        self.totals.live_frames += 1
        elapsed = self.window.frames * FRAME_SECONDS
        self.transcript.add(out.text, user_pcm=pcm, t=elapsed,
                            threshold_dbfs=self.cfg.window.vad_threshold_dbfs,
                            speakers=active_speakers(self.audio))
        cut = self.detector.update(pcm, out.token)
        if cut is not None:
            self._end_window(cut)
        elif self.cfg.secondary_model.speculative_seconds > 0:
            self._speculate(elapsed)
        return model_s

    def _speculate(self, elapsed: float) -> None:
        """Start compaction before the cut so the answer is ready when the window closes:
        ``speculative_seconds`` before ``max_seconds``, and at each silence that would end
        the window at a pause (dropped again if the talk resumes before the cut)."""
        cut_in = self.detector.pause_cut_in()
        if self._spec is not None:
            if cut_in is None and self._spec_on_pause:
                self._discard_spec()  # the talk went on: that summary would miss it
            return
        if elapsed >= self._spec_at:
            self._spec, self._spec_on_pause = self._start_compaction(), False
        elif (cut_in is not None and cut_in <= self.detector.pause_frames
              and self._pause_specs < MAX_PAUSE_SPECULATIONS):
            # This silence ends the window if it lasts: start at most pause_seconds ahead.
            self._spec, self._spec_on_pause = self._start_compaction(), True
            self._pause_specs += 1

    def _discard_spec(self) -> None:
        spec, self._spec = self._spec, None
        assert spec is not None and self.window is not None
        log.info("speculation_dropped", window=self.window.number, reason="talk resumed")
        if not spec.done():
            spec.cancel()  # still retrieving memories: no LLM request was made
        elif not spec.cancelled() and spec.exception() is None:
            self.compactor.discard(spec.result())

    async def _thinking_frame(self) -> float:
        assert self.window is not None and self._handover is not None
        frame = self.player.next_frame()
        self.audio.write_frame(frame)
        self.window.handover_frames += 1
        paced = 0.0
        if self._fast and not self._handover.done():
            # Fast WAV runs: the clip would otherwise be spent in microseconds; let the
            # handover make progress at real-time pace, as it would with a microphone.
            t = time.perf_counter()
            await asyncio.wait({self._handover}, timeout=FRAME_SECONDS)
            paced = time.perf_counter() - t
        if self._handover.done() and self.player.clip_frames_remaining == 0:
            result = self._handover.result()  # re-raises a crash in the handover
            self._resume(result)
        return paced  # not orchestration overhead: simulated real-time pacing

    # ------------------------------------------------------------------ windows

    def _open_window(self, restart_ms: float, tokens: int) -> None:
        number = self.totals.windows + 1
        self.window = WindowStats(number=number, started=time.perf_counter(),
                                  opened_at=datetime.now(UTC),
                                  restart_ms=restart_ms, prompt_tokens=tokens)
        self._dead_air_base = _late_or_missing(self.audio)
        self.transcript = WindowTranscript()
        self.detector.reset()
        self._spec = None
        self._pause_specs = 0
        self.state = State.LIVE
        self.on_window(self.window, self.state)

    def _start_compaction(self) -> asyncio.Task[asyncio.Task[str]]:
        return asyncio.create_task(self._begin_compaction(self.transcript.utterances()),
                                   name="compaction-start")

    async def _begin_compaction(self, utterances: list[Utterance]) -> asyncio.Task[str]:
        # Retrieval searches the journal (milliseconds at 10k entries): done in a thread so
        # the frame loop never waits for it.
        memories = await self.memory.recall(self.compactor.recall_query(utterances))
        return self.compactor.start(utterances, memories, self.prompt)

    def _end_window(self, cut: Cut) -> None:
        assert self.window is not None
        w = self.window
        w.end_reason = cut.reason
        w.seconds = w.frames * FRAME_SECONDS
        w.speculative = self._spec is not None
        self.state = State.THINKING
        self.player.start()  # the clip begins on the very next frame
        utterances = self.transcript.utterances()
        started_at, ended_at = w.opened_at, datetime.now(UTC)
        self._handover_t0 = time.perf_counter()
        self._handover = asyncio.create_task(
            self._run_handover(utterances, self._spec, started_at, ended_at, w),
            name=f"handover-{w.number}")
        self.on_window(w, self.state)

    async def _run_handover(self, utterances: list[Utterance],
                            spec: asyncio.Task[asyncio.Task[str]] | None,
                            started_at: datetime, ended_at: datetime,
                            w: WindowStats) -> CompactionResult:
        started = await (spec or self._start_compaction())
        result = await self.compactor.finish(started, utterances)
        w.compaction_ms = result.latency_ms
        w.fallback = result.fallback
        self.memory.submit(WindowRecord(
            window=w.number, started_at=started_at, ended_at=ended_at,
            transcript=render(utterances), prompt=result.prompt,
            directive=result.memory))
        await self._log_transcript(w.number, started_at, ended_at, utterances, result.prompt)
        prime = await self._prime(result.prompt, window=w.number + 1)
        w.restart_ms = prime.ms
        w.prompt_tokens = prime.tokens
        return result

    async def _log_transcript(self, window: int, started: datetime, ended: datetime,
                              utterances: list[Utterance], prompt: str) -> None:
        path = self.cfg.conversation.transcript_file
        if path is None:
            return
        try:
            await asyncio.to_thread(append_window, path, window, started, ended, utterances,
                                    prompt)
        except OSError as exc:  # a full disk must not stop the conversation
            log.warning("transcript_write_failed", path=str(path), error=str(exc))

    async def _prime(self, prompt: str, window: int):
        stats = await self.engine.prime(prompt)
        log.info("primed", window=window, tokens=stats.tokens, ms=round(stats.ms, 2),
                 prompt_sha=hashlib.sha256(prompt.encode()).hexdigest()[:12])
        return stats

    def _resume(self, result: CompactionResult) -> None:
        assert self.window is not None
        w = self.window
        w.handover_ms = (time.perf_counter() - self._handover_t0) * 1e3
        w.dead_air_frames = _late_or_missing(self.audio) - self._dead_air_base
        self.prompt = result.prompt
        t = self.totals
        t.windows += 1
        t.dead_air_frames += w.dead_air_frames
        t.fallbacks += int(result.fallback is not None)
        t.prompts.append(result.prompt)
        t.handover_ms.append(w.handover_ms)
        t.compaction_ms.append(w.compaction_ms)
        t.restart_ms.append(w.restart_ms)
        t.clips_played += self.player.clips_played  # the player counts since start()
        self._handover = None
        log.info("window", window=w.number, seconds=round(w.seconds, 2), end=w.end_reason,
                 frames=w.frames, handover_frames=w.handover_frames,
                 dead_air_frames=w.dead_air_frames, compaction_ms=round(w.compaction_ms, 1),
                 fallback=w.fallback, speculative=w.speculative, prompt_tokens=w.prompt_tokens,
                 restart_ms=round(w.restart_ms, 1), handover_ms=round(w.handover_ms, 1),
                 **_audio_counters(self.audio))
        self._open_window(restart_ms=w.restart_ms, tokens=w.prompt_tokens)

    async def _drain_handover(self) -> None:
        """At stop, let a running handover finish its memory write (bounded by the caller)."""
        if self._handover is not None and not self._handover.done():
            try:
                await self._handover
            except Exception as exc:  # already stopping: report, don't mask the stop
                log.warning("handover failed during stop", error=str(exc))
        for task in (self._spec,):
            if task is not None and not task.done():
                task.cancel()


def _audio_counters(audio: AudioTransport) -> dict[str, int]:
    s = audio.stats()
    return {"xruns": s.xruns, "dropped_in": s.dropped_in, "dropped_out": s.dropped_out,
            "underruns": s.underruns}
