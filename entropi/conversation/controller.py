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

from entropi.audio.levels import rms_dbfs
from entropi.clips.player import ClipPlayer
from entropi.compaction.compactor import CompactionResult, Compactor
from entropi.config import Config
from entropi.conversation.egress import words_for_llm
from entropi.conversation.pause import Cut, PauseDetector
from entropi.conversation.simclock import SimulatedClock
from entropi.conversation.transcript import WindowTranscript
from entropi.core.constants import FRAME_SECONDS
from entropi.core.crypto import cipher_from_env
from entropi.core.logs import get_logger
from entropi.hearing.turns import TurnTranscriber, settle
from entropi.hearing.vad import VoiceActivity, open_vad
from entropi.memory.record import WindowRecord
from entropi.memory.service import MemoryService
from entropi.memory.transcript_file import append_window
from entropi.text.utterance import Utterance, render_transcript
from entropi.transports.base import AudioTransport, active_speakers, emit_text, persisted

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
    # Fast mode: late frames on the simulated clock counting only the loop's own CPU time.
    loop_dead_air_frames: int = 0
    fallbacks: int = 0
    prompts: deque[str] = field(default_factory=lambda: deque(maxlen=1_000))
    handover_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    # Per-frame samples: bounded so a run of hours keeps flat memory.
    overhead_ms: deque[float] = field(default_factory=lambda: deque(maxlen=20_000))
    compaction_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    restart_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    clips_played: int = 0
    # Whether the user was heard at all (voice activity, or a level above
    # window.vad_threshold_dbfs in any frame, handovers included); if not, nobody spoke to
    # us and nothing about them is journaled.
    user_spoke: bool = False


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
        asr: TurnTranscriber | None = None,
        vad: VoiceActivity | None = None,
        on_user_turn: Callable[[Utterance], None] | None = None,
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
        # One decision per frame (silero's arrives LAG frames late, see entropi.hearing.vad),
        # shared by the pause detector and the user-turn segmenter.
        self.vad = vad or open_vad(cfg.window)
        self.state = State.PRIMING
        self.prompt = cfg.conversation.first_prompt
        self.totals = RunTotals()
        self.window: WindowStats | None = None
        self.asr = asr
        self.on_user_turn = on_user_turn
        self._loop: asyncio.AbstractEventLoop | None = None
        self.transcript = WindowTranscript(asr, on_turn=self._user_turn)
        # The transcript file holds what was said, like the journal: same key, same privacy.
        self._transcript_cipher = cipher_from_env(cfg.memory.encryption_key_env)
        self._stop = asyncio.Event()
        self._spec: asyncio.Task[asyncio.Task[str]] | None = None
        self._handover: asyncio.Task[CompactionResult] | None = None
        self._fast = bool(cfg.audio.fast and cfg.audio.input == "wav")
        # Fast runs have no real clock: this one counts the frames real time would miss. The
        # second counts only the event loop's own CPU time: what orchestration alone costs,
        # whatever the model's speed or the machine's load.
        self._clock = SimulatedClock(cfg.audio.jitter_frames) if self._fast else None
        self._loop_clock = SimulatedClock(cfg.audio.jitter_frames) if self._fast else None
        self._spec_at = max(0.0, cfg.window.max_seconds - cfg.secondary_model.speculative_seconds)
        self._spec_on_pause = False
        self._spec_seen: list[Utterance] = []  # what the last started compaction was given
        self._pause_specs = 0  # pause-triggered starts this window (each costs an LLM call)

    def _user_turn(self, utterance: Utterance) -> None:
        """A finished user turn with its words (or its marker): to ``on_user_turn`` on the
        loop's thread, since the recogniser's thread delivers it."""
        if self.on_user_turn is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self.on_user_turn, utterance)

    # ------------------------------------------------------------------ control

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> RunTotals:
        """Prime the first window, then converse until stopped, input ends or max_windows."""
        self._loop = asyncio.get_running_loop()
        if self._stop.is_set():  # stopped while starting up: no window to prime
            self.state = State.STOPPED
            return self.totals
        stats = await self._prime(self.prompt, window=1)
        self.totals.prompts.append(self.prompt)
        self._open_window(restart_ms=stats.ms, tokens=stats.tokens)
        last_end, last_cpu = time.perf_counter(), time.thread_time()
        while not self._stop.is_set():
            pcm = await self.audio.read_frame()
            if pcm is None:
                log.info("input_ended", frames=self.totals.frames)
                break
            t0 = time.perf_counter()
            idle = 0.0
            if not self.totals.user_spoke:  # a level check per frame, until the first word
                self.totals.user_spoke = rms_dbfs(pcm) > self.cfg.window.vad_threshold_dbfs
            if self.state is State.LIVE:
                model_s = await self._live_frame(pcm)
            else:
                model_s = await self._thinking_frame()  # pacing, excluded like model time
                idle = min(model_s, FRAME_SECONDS)  # beyond one period the loop was stuck
            self.totals.frames += 1
            end = time.perf_counter()
            self.totals.overhead_ms.append((end - t0 - model_s) * 1e3)
            if self._clock is not None and self._loop_clock is not None:
                cpu = time.thread_time()  # this thread only: the model runs on its own
                self._clock.frame_done(end - last_end - idle)  # stalls anywhere count
                self._loop_clock.frame_done(cpu - last_cpu)
                self.totals.loop_dead_air_frames = self._loop_clock.late
                last_cpu = cpu
            last_end = end
            self.on_frame()
            if self.max_windows is not None and self.totals.windows >= self.max_windows \
                    and self.state is State.LIVE and self.window and self.window.frames == 0:
                break
        await self._drain_handover()
        self.vad.close()
        self.state = State.STOPPED
        return self.totals

    # ------------------------------------------------------------------ frames

    async def _live_frame(self, pcm: np.ndarray) -> float:
        assert self.window is not None
        self.vad.push(pcm)  # the VAD thread works while the engine steps
        t_model = time.perf_counter()
        out = await self.engine.step(pcm)
        model_s = time.perf_counter() - t_model
        user_active = await self.vad.decision()
        self.totals.user_spoke = self.totals.user_spoke or bool(user_active)
        # A fast WAV run may outrun the VAD thread: that wait is pacing, like model time.
        vad_wait = self.vad.last_wait_s if self._fast else 0.0
        self.audio.write_frame(out.pcm)
        emit_text(self.audio, out.text)
        self.window.frames += 1
        self.totals.live_frames += 1
        elapsed = self.window.frames * FRAME_SECONDS
        self.transcript.add(out.text, user_pcm=pcm, t=elapsed, user_active=user_active,
                            speakers=active_speakers(self.audio))
        cut = self.detector.update(pcm, out.token, user_active=user_active)
        if cut is not None:
            self._end_window(cut)
        elif self.cfg.secondary_model.speculative_seconds > 0:
            self._speculate(elapsed)
        return model_s + vad_wait

    def _speculate(self, elapsed: float) -> None:
        """Start compaction before the cut so the answer is ready when the window closes:
        ``speculative_seconds`` before ``max_seconds``, and once a silence has outlasted a gap
        between words and would end the window at a pause (dropped again if the talk resumes
        before the cut)."""
        cut_in = self.detector.pause_cut_in()
        if self._spec is not None:
            if cut_in is None and self._spec_on_pause:
                self._discard_spec()  # the talk went on: that summary would miss it
            return
        if elapsed >= self._spec_at:
            self._spec, self._spec_on_pause = self._start_compaction(), False
        elif (cut_in is not None and self.detector.in_pause
              and cut_in <= self.detector.pause_frames
              and self._pause_specs < MAX_PAUSE_SPECULATIONS
              and self.transcript.words_in):  # else the request would miss the last words
            # This silence ends the window if it lasts: start at most pause_seconds ahead.
            self._spec, self._spec_on_pause = self._start_compaction(), True
            self._pause_specs += 1

    def _discard_spec(self, reason: str = "talk resumed") -> None:
        spec, self._spec = self._spec, None
        assert spec is not None and self.window is not None
        log.info("speculation_dropped", window=self.window.number, reason=reason)
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
        self._dead_air_base = self._late_frames()
        # Turns of the last window still being transcribed open this one with their words.
        self.transcript = WindowTranscript(self.asr, carried=self.transcript.pending(),
                                           on_turn=self._user_turn)
        self.detector.reset()
        self._spec = None
        self._pause_specs = 0
        self.state = State.LIVE
        self.on_window(self.window, self.state)

    def _start_compaction(self) -> asyncio.Task[asyncio.Task[str]]:
        self._spec_seen = self.transcript.utterances()
        return asyncio.create_task(self._begin_compaction(self._spec_seen),
                                   name="compaction-start")

    async def _begin_compaction(self, utterances: list[Utterance]) -> asyncio.Task[str]:
        # Retrieval searches the journal (milliseconds at 10k entries): done in a thread so
        # the frame loop never waits for it.
        memories = await self.memory.recall(self.compactor.recall_query(utterances))
        return self.compactor.start(words_for_llm(self.cfg, utterances), memories, self.prompt)

    def _end_window(self, cut: Cut) -> None:
        assert self.window is not None
        w = self.window
        w.end_reason = cut.reason
        w.seconds = w.frames * FRAME_SECONDS
        w.speculative = self._spec is not None
        self.state = State.THINKING
        self.player.start()  # the clip begins on the very next frame
        self.transcript.close()  # the open user turn goes to the recogniser now
        started_at, ended_at = w.opened_at, datetime.now(UTC)
        self._handover_t0 = time.perf_counter()
        self._handover = asyncio.create_task(
            self._run_handover(self.transcript, self._spec, started_at, ended_at, w),
            name=f"handover-{w.number}")
        self.on_window(w, self.state)

    async def _run_handover(self, transcript: WindowTranscript,
                            spec: asyncio.Task[asyncio.Task[str]] | None,
                            started_at: datetime, ended_at: datetime,
                            w: WindowStats) -> CompactionResult:
        # Bounded wait for the last user turns' words, inside the clip; turns still running
        # after it are markers here and open the next window with their words.
        await settle(transcript.pending(), self.cfg.asr.wait_seconds)
        utterances = transcript.utterances()
        if spec is not None and _user_words(utterances) != _user_words(self._spec_seen):
            self._discard_spec("user words arrived")  # the early request lacks them
            spec = None
        started = await (spec or self._start_compaction())
        result = await self.compactor.finish(started, words_for_llm(self.cfg, utterances))
        w.compaction_ms = result.latency_ms
        w.fallback = result.fallback
        # Consent: the live window used everything; the files get what may be kept.
        kept = persisted(self.audio, utterances, result.prompt, result.memory)
        if self.totals.user_spoke:  # nobody has spoken yet: nothing about a person to keep
            self.memory.submit(WindowRecord(
                window=w.number, started_at=started_at, ended_at=ended_at,
                transcript=render_transcript(kept.utterances), prompt=kept.prompt,
                directive=kept.directive, people=kept.people))
        await self._log_transcript(w.number, started_at, ended_at, kept.utterances, kept.prompt)
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
                                    prompt, self._transcript_cipher)
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
        w.dead_air_frames = self._late_frames() - self._dead_air_base
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

    def _late_frames(self) -> int:
        """Dead-air frames so far: from the audio clock, or the simulated one in fast mode."""
        simulated = self._clock.late if self._clock is not None else 0
        return _late_or_missing(self.audio) + simulated

    async def _drain_handover(self) -> None:
        """At stop, let a running handover finish its memory write (bounded by the caller)."""
        if self._handover is not None and not self._handover.done():
            try:
                await self._handover
            except Exception as exc:  # already stopping: report, don't mask the stop
                log.warning("handover_failed_during_stop", error=str(exc))
        for task in (self._spec,):
            if task is not None and not task.done():
                task.cancel()


def _user_words(utterances: list[Utterance]) -> list[str]:
    return [u.text for u in utterances if u.speaker == "user" and u.text]


def _audio_counters(audio: AudioTransport) -> dict[str, int]:
    s = audio.stats()
    return {"xruns": s.xruns, "dropped_in": s.dropped_in, "dropped_out": s.dropped_out,
            "underruns": s.underruns}
