"""Daemon lifecycle: load, warm up, converse, stop cleanly.

Start order: engine (loaded and warmed in its own thread) → thinking clips (the persona's
rendered ones, rendered now if ``voice.render_clips: auto`` and missing) → LLM backend →
memory writers → audio → READY=1. A first SIGTERM/SIGINT asks the controller to stop after
the current frame; audio fades out, memory is flushed, the session's last journal entry is
written, and the process exits 0. A second signal exits at once. A crash in any task is
logged with its task name and the process exits non-zero so systemd restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entropi.clips.player import ThinkingClips
from entropi.config import Config, check_budget
from entropi.conversation.controller import PersonaPlexController, RunTotals, State, WindowStats
from entropi.conversation.session import Session
from entropi.core.errors import EntropiError
from entropi.core.files import write_private
from entropi.core.logs import get_logger, narrate
from entropi.hearing.asr import open_transcriber
from entropi.hearing.kyutai import KyutaiTranscriber
from entropi.hearing.turns import TurnTranscriber
from entropi.llm.session import open_llm
from entropi.service.paths import guarded
from entropi.service.sdnotify import Notifier
from entropi.service.status import RunLock, lock_path, write_status
from entropi.text.utterance import Utterance
from entropi.transports.base import AudioTransport, status_info
from entropi.transports.factory import open_transport

log = get_logger(__name__)

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_STOP_TIMEOUT = 75  # EX_TEMPFAIL: graceful stop overran service.stop_timeout_seconds


@dataclass(frozen=True)
class RunOptions:
    max_windows: int | None = None
    summary_json: Path | None = None
    # Where a web caller's voice_prompt is looked up (None: voice.prompt_dir only).
    voice_dirs: tuple[Path, ...] | None = None
    signals: bool = True  # False: the host process owns SIGTERM/SIGINT (a cluster replica)
    # True: other daemons (a cluster's replicas) share the memory and files; each call locks
    # its person's folder instead, and only the status file is this daemon's alone.
    shared_data: bool = False


class Daemon:
    def __init__(self, cfg: Config, opts: RunOptions, server: Any = None) -> None:
        self.cfg = cfg
        self.opts = opts
        self.server = server  # where callers come from; None: its own aiohttp server
        self.notifier = Notifier()
        self.controller: PersonaPlexController | None = None
        self.summary: dict[str, Any] = {}
        self._signals = 0
        self._live: dict[str, Any] = {"state": "starting"}
        self._status_due = asyncio.Event()
        self._status_closing = False
        self.stop_requested = asyncio.Event()
        self.feed: Any = None  # the web page's LiveFeed, when remote callers are served
        self.on_live: Any = None  # called when a conversation's first window goes live
        self.calls: list[dict[str, Any]] = []  # per remote call: latency samples, problems
        self.status_extra: Any = None  # () -> dict merged into every status write (a replica's)
        self._ended: WindowStats | None = None
        self._asr: TurnTranscriber | None = None
        self._status_failing = False  # the last write failed (logged once, until it works)
        self._loading = False
        if not cfg.service.watchdog:
            self.notifier.watchdog_interval = None  # service.watchdog: false → no WATCHDOG=1

    # ------------------------------------------------------------------ signals

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals > 1:
            log.warning("second_signal", signal=name, action="exiting now")
            os._exit(128 + signum)
        log.info("stopping", signal=name)
        self.notifier.stopping()
        if self._loading:
            # The model load runs in a thread that cannot be interrupted, and nothing has
            # been said or written yet: leave now rather than after priming window 1.
            log.info("stopped_during_model_load")
            self._write_status(self._live | {"state": "stopped"})
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_OK)
        self.request_stop()

    def request_stop(self) -> None:
        """Stop after the current frame: memory is flushed, then ``serve`` returns."""
        self._live["state"] = "stopping"
        self.stop_requested.set()  # a daemon waiting for a caller stops waiting
        if self.controller is not None:
            self.controller.request_stop()
        else:
            self._stop_before_ready = True

    _stop_before_ready = False

    # ------------------------------------------------------------------ status

    def _on_window(self, w: WindowStats, state: State) -> None:
        # The window that just opened has had no handover yet: report the last one done.
        done = self.controller.totals.handover_ms if self.controller is not None else ()
        handover = done[-1] if done else 0.0
        self._live.update(state=state.value, window=w.number, prompt_tokens=w.prompt_tokens,
                          last_end=w.end_reason or None, last_restart_ms=round(w.restart_ms, 1),
                          last_handover_ms=round(handover, 1))
        if state is State.THINKING:
            self._ended = w
            log.info("window_end", window=w.number, frames=w.frames, end=w.end_reason)
            self.publish("window_end", window=w.number, seconds=round(w.seconds, 2),
                         end=w.end_reason)
            self.publish("state", state="thinking", window=w.number)
        elif state is State.LIVE:
            self.notifier.status(f"window {w.number} live, prompt {w.prompt_tokens} tokens, "
                                 f"last handover {handover:.0f} ms")
            ended, self._ended = self._ended, None
            prompt = self.controller.prompt if self.controller is not None else None
            if ended is not None:  # its handover is over: compaction figures are known
                self._live.update(last_compaction_ms=round(ended.compaction_ms, 1),
                                  last_fallback=ended.fallback, last_prompt=prompt)
                self.publish("handover", window=ended.number, fallback=ended.fallback,
                             compaction_ms=round(ended.compaction_ms, 1),
                             handover_ms=round(ended.handover_ms, 1), prompt=prompt)
            self.publish("state", state="live", window=w.number)
            if w.number == 1 and self.on_live is not None:
                self.on_live()  # primed: the caller gets the handshake now
        self._status_due.set()  # the file is written off the frame loop, right away

    def publish(self, kind: str, **data: Any) -> None:
        """An event for the web page's live view (nothing when no server runs)."""
        if self.feed is not None:
            self.feed.publish(kind, **data)

    def _on_user_turn(self, turn: Utterance) -> None:
        # The page shows the user's words beside the agent's (a marker without a recogniser).
        self.publish("user_text", text=turn.text, seconds=turn.seconds, name=turn.name)

    def set_state(self, state: str, **extra: Any) -> None:
        self._live.update(state=state, **extra)
        self.publish("state", state=state, **extra)
        self._status_due.set()

    def _on_frame(self) -> None:
        # WATCHDOG=1 comes from the audio loop itself: a stalled loop gets restarted.
        self.notifier.watchdog()

    async def _status_writer(self) -> None:
        """Every second (model load included), or at once after a state change, in a thread:
        never on the loop."""
        while not self._status_closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._status_due.wait(), 1.0)
            self._status_due.clear()
            if self.status_extra is not None:
                self._live.update(self.status_extra())
            c = self.controller
            if c is not None:
                self._live.update(frames=c.totals.frames, windows=c.totals.windows,
                                  dead_air_frames=c.totals.dead_air_frames,
                                  audio=vars(c.audio.stats()))
                info = status_info(c.audio)  # Discord: channel, people
                if info is not None:
                    self._live["discord"] = info
            await asyncio.to_thread(self._write_status, dict(self._live))

    async def _stop_status_writer(self, task: asyncio.Task[None]) -> None:
        # Let a write in flight finish (a thread can't be cancelled) before the final one.
        self._status_closing = True
        self._status_due.set()
        await task

    def _write_status(self, data: dict[str, Any]) -> None:
        """A status file is a convenience: a full disk under it must not end the talk."""
        try:
            write_status(self.cfg.service.status_file, data)
        except OSError as exc:
            if not self._status_failing:
                log.warning("status_write_failed", path=str(self.cfg.service.status_file),
                            error=str(exc), action="retrying every second; talk goes on")
            self._status_failing = True
        else:
            if self._status_failing:
                log.info("status_write_recovered", path=str(self.cfg.service.status_file))
            self._status_failing = False

    # ------------------------------------------------------------------ lifecycle

    async def serve(self) -> int:
        cfg = self.cfg
        lock = _run_lock(cfg, self.opts.summary_json,  # before anything, torch included
                         data=not self.opts.shared_data)
        try:
            # Every up-front refusal (preflight, the lock) stays one line; now the first line
            # a person sees, before torch is even imported (seconds on a cold disk).
            narrate(f"loading {model_label(cfg)} on {cfg.runtime.device} (a first start "
                    "downloads it; `entropi fetch` does that ahead)…")
            from entropi.engine import EngineWorker, SlotPool  # torch loads here, not at import

            # B > 1 only with websocket callers (preflight says so before anything loads).
            batched = cfg.runtime.max_conversations > 1 and cfg.audio.input == "websocket"
            return await self._serve(SlotPool if batched else EngineWorker)
        finally:
            lock.release()

    async def _serve(self, engine_worker: Any) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT) if self.opts.signals else ():
            loop.add_signal_handler(sig, self._on_signal, sig)
        t_start = time.perf_counter()
        self._write_status(self._live)
        status = asyncio.create_task(self._status_writer(), name="status-writer")
        try:
            return await self._load_and_converse(engine_worker, t_start)
        finally:
            await self._stop_status_writer(status)
            self._live["state"] = "stopped"
            self._write_status(self._live | ({"summary": self.summary} if self.summary else {}))

    async def _load_and_converse(self, engine_worker: Any, t_start: float) -> int:
        cfg = self.cfg
        self.notifier.status("loading model")
        # The recogniser first: a bad asr.model is one clear line before the big model loads.
        transcriber = await asyncio.to_thread(open_transcriber, cfg.asr, cfg.model)
        self._asr = (TurnTranscriber(transcriber, cfg.asr.turn_timeout_seconds)
                     if transcriber is not None else None)
        worker = engine_worker(cfg)
        self._loading = True
        try:
            await worker.start()
            if isinstance(transcriber, KyutaiTranscriber):  # steps on the engine's own encode
                await worker.call(worker.engine.attach_stt, transcriber.stream)
        finally:
            self._loading = False
        try:
            if self._stop_before_ready:
                log.info("stopped_before_first_window")
                return EXIT_OK
            budget = check_budget(cfg, voice_frames=worker.engine.voice_frames)
            # The persona's own rendered clips (rendered here, before READY, if needed).
            from entropi.clips.render import thinking_clips

            clips = await worker.call(thinking_clips, worker.engine, cfg)
            deadline = cfg.secondary_model.deadline_seconds or clips.longest_seconds + 1.0
            load_s = round(time.perf_counter() - t_start, 2)
            log.info("engine_ready", voice_frames=budget.voice_frames,
                     context=budget.context_window, needed=budget.needed, load_s=load_s,
                     **worker.engine.memory_stats())
            narrate(f"model loaded in {load_s:.0f} s; starting the LLM and audio…")
            return await self._converse(worker, clips, deadline, t_start)
        finally:
            await worker.close()
            if self._asr is not None:
                self._asr.close()

    async def _converse(self, worker, clips: ThinkingClips, deadline: float,
                        t_start: float) -> int:
        cfg = self.cfg
        # Two LLM slots per conversation: its memory directive never queues behind a prompt.
        async with open_llm(cfg.secondary_model,
                            parallel=2 * cfg.runtime.max_conversations) as client:
            if cfg.audio.input == "websocket" and cfg.runtime.max_conversations > 1:
                from entropi.service.many import serve_many

                await serve_many(self, worker, client, clips, deadline, self.server)
            elif cfg.audio.input == "websocket":
                from entropi.service.callers import serve_callers

                await serve_callers(self, worker, client, clips, deadline, self.server)
            else:
                audio = open_transport(cfg)
                await audio.start()
                self.notifier.ready(status="ready: priming first window")
                load_s = round(time.perf_counter() - t_start, 2)
                log.info("ready", load_s=load_s, deadline_s=round(deadline, 2), clips=len(clips))
                narrate(f"ready after {load_s:.0f} s: {audio_label(cfg)}; Ctrl-C or SIGTERM "
                        "stops cleanly")
                await self.converse(cfg, worker, client, clips, deadline, audio)
        return EXIT_OK

    async def converse(self, cfg: Config, worker, client, clips: ThinkingClips,
                       deadline: float, audio: AudioTransport) -> None:
        """One conversation on ``audio`` (the local one, or a caller's): prime, talk, flush."""
        session = self.session(cfg, worker, client, clips, deadline, audio, self._on_window)
        self.controller = session.controller
        if self._stop_before_ready:
            session.controller.request_stop()
        try:
            self.summary = await session.run(self.supervise)
        finally:
            self.controller = None

    def session(self, cfg: Config, engine: Any, client: Any, clips: ThinkingClips,
                deadline: float, audio: AudioTransport, on_window: Any) -> Session:
        """One conversation wired to this daemon's recogniser, watchdog and live feed
        (``engine``: the worker, or a caller's slot of the batched engine)."""
        return Session(cfg, engine, client, clips, deadline, audio, asr=self._asr,
                       max_windows=self.opts.max_windows, on_window=on_window,
                       on_frame=self._on_frame, on_user_turn=self._on_user_turn)

    def live_status(self) -> dict[str, Any]:
        """What the status file and ``/api/status`` show now (a copy)."""
        return dict(self._live)

    async def supervise(self, controller: PersonaPlexController) -> RunTotals:
        """Run the controller beside its stop guard; a crash in either ends both."""
        async with asyncio.TaskGroup() as tg:
            run = tg.create_task(controller.run(), name="controller")
            guard = tg.create_task(self._stop_guard(controller), name="stop-guard")
            totals = await run
            guard.cancel()
        return totals

    async def _stop_guard(self, controller: PersonaPlexController) -> None:
        """Once stop is requested, the loop gets stop_timeout seconds, then we bail out."""
        while not controller.stopping:
            await asyncio.sleep(0.05)
        await asyncio.sleep(self.cfg.service.stop_timeout_seconds)
        log.error("graceful_stop_overran", timeout_s=self.cfg.service.stop_timeout_seconds)
        os._exit(EXIT_STOP_TIMEOUT)


def run_daemon(cfg: Config, opts: RunOptions) -> int:
    daemon = Daemon(cfg, opts)
    try:
        code = asyncio.run(daemon.serve())
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        leaves = _leaves(exc)
        user_errors = [e for e in leaves if isinstance(e, EntropiError)]
        if user_errors:  # bad input found late (voice file, device, LLM key): one line, its code
            raise user_errors[0] from None
        for leaf in leaves:
            log.error("crashed", error=f"{type(leaf).__name__}: {leaf}", exc_info=leaf)
        code = EXIT_CRASH
        daemon.notifier.stopping()
    if daemon.summary:
        log.info("run_summary", **daemon.summary)
        # For the person who started it, whatever the TTY (journald keeps it too).
        print(human_summary(daemon.summary), file=sys.stderr, flush=True)
        if opts.summary_json is not None:
            try:
                write_private(opts.summary_json, json.dumps(daemon.summary, indent=2).encode())
            except OSError as exc:  # checked up front; the disk may still fill meanwhile
                log.error("summary_write_failed", path=str(opts.summary_json), error=str(exc))
                code = code or EXIT_CRASH
    return code


def _run_lock(cfg: Config, summary_json: Path | None, data: bool = True) -> RunLock:
    """Lock the run's files (status, WAV, transcript, journal, profile…; with ``data``
    False the status file only) against a second daemon, or say which pid has them."""
    lock = RunLock(lock_path(cfg.service.status_file),
                   guarded(cfg, summary_json) if data else ())
    lock.acquire()
    return lock


def model_label(cfg: Config) -> str:
    m = cfg.model
    if m.source == "tiny":
        return "the tiny demo model"
    if m.source == "local":
        return f"PersonaPlex from {m.moshi_weight}"
    return f"PersonaPlex ({m.hf_repo})"


def audio_label(cfg: Config) -> str:
    a = cfg.audio
    heard = {"device": f"listening on {a.input_device or 'the default microphone'}",
             "wav": f"reading {a.input_wav}", "discord": "in the Discord voice channel"}
    said = {"device": f"speaking on {a.output_device or 'the default speaker'}",
            "wav": f"writing {a.output_wav}", "discord": "speaking there"}
    return f"{heard.get(a.input, a.input)}, {said.get(a.output, a.output)}"


def human_summary(s: dict[str, Any]) -> str:
    lines = [f"entropi: {s['windows']} windows, {s['audio_seconds']:.1f} s of audio in "
             f"{s['wall_seconds']:.1f} s; dead air {s['dead_air_frames']} frames; "
             f"{s['fallbacks']} compaction fallbacks; handover p50 "
             f"{s['handover_ms_p50'] or 0:.0f} ms"]
    for label, key in (("output WAV", "output_wav"), ("transcript", "transcript_file"),
                       ("journal", "journal_dir"), ("profile", "profile_path")):
        if s.get(key):
            lines.append(f"  {label:<11} {s[key]}")
    return "\n".join(lines)


def _leaves(group: BaseException) -> list[BaseException]:
    if isinstance(group, BaseExceptionGroup):
        return [leaf for sub in group.exceptions for leaf in _leaves(sub)]
    return [group]
