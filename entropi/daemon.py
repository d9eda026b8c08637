"""Daemon lifecycle: load, warm up, converse, stop cleanly.

Start order: engine (loaded and warmed in its own thread) → thinking clips → LLM backend →
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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from entropi.audio import ClipPlayer, ThinkingClips, open_audio
from entropi.config import Config, check_budget
from entropi.controller import PersonaPlexController, RunTotals, State, WindowStats
from entropi.errors import EntropiError
from entropi.llm import Compactor, open_llm
from entropi.llm.ledger import store_for
from entropi.logs import get_logger
from entropi.memory import MemoryService
from entropi.sdnotify import Notifier
from entropi.status import write_status

log = get_logger(__name__)

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_STOP_TIMEOUT = 75  # EX_TEMPFAIL: graceful stop overran service.stop_timeout_seconds


@dataclass(frozen=True)
class RunOptions:
    max_windows: int | None = None
    summary_json: Path | None = None


def _pct(values: Iterable[float], q: float) -> float:
    values = list(values)
    return float(np.percentile(values, q)) if values else 0.0


def summarize(totals: RunTotals, cfg: Config, seconds: float,
              audio_stats: Any | None = None, memory_stats: dict | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "windows": totals.windows,
        "frames": totals.frames,
        "live_frames": totals.live_frames,
        "dead_air_frames": totals.dead_air_frames,
        "fallbacks": totals.fallbacks,
        "clips_played": totals.clips_played,
        "overhead_ms_p50": round(_pct(totals.overhead_ms, 50), 4),
        "overhead_ms_p99": round(_pct(totals.overhead_ms, 99), 4),
        "handover_ms_p50": round(_pct(totals.handover_ms, 50), 1),
        "handover_ms_p99": round(_pct(totals.handover_ms, 99), 1),
        "compaction_ms_p50": round(_pct(totals.compaction_ms, 50), 1),
        "restart_ms_p50": round(_pct(totals.restart_ms, 50), 2),
        "distinct_prompts": len(set(totals.prompts)),
        "wall_seconds": round(seconds, 2),
        "audio_seconds": round(totals.frames * 0.08, 2),
        "output_wav": str(cfg.audio.output_wav) if cfg.audio.output == "wav" else None,
        "transcript_file": (str(cfg.conversation.transcript_file)
                            if cfg.conversation.transcript_file else None),
        "journal_dir": str(cfg.memory.journal_dir) if cfg.memory.enabled else None,
        "profile_path": str(cfg.memory.profile_path) if cfg.memory.enabled else None,
    }
    if audio_stats is not None:
        out |= {f"audio_{k}": v for k, v in vars(audio_stats).items()}
    if memory_stats:
        out |= {f"memory_{k}": v for k, v in memory_stats.items()}
    return out


class Daemon:
    def __init__(self, cfg: Config, opts: RunOptions) -> None:
        self.cfg = cfg
        self.opts = opts
        self.notifier = Notifier()
        self.controller: PersonaPlexController | None = None
        self.summary: dict[str, Any] = {}
        self._signals = 0
        self._live: dict[str, Any] = {"state": "starting"}
        self._status_due = asyncio.Event()
        self._status_closing = False

    # ------------------------------------------------------------------ signals

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals > 1:
            log.warning("second signal: exiting now", signal=name)
            os._exit(128 + signum)
        log.info("stopping", signal=name)
        self.notifier.stopping()
        self._live["state"] = "stopping"
        if self.controller is not None:
            self.controller.request_stop()
        else:
            self._stop_before_ready = True

    _stop_before_ready = False

    # ------------------------------------------------------------------ status

    def _on_window(self, w: WindowStats, state: State) -> None:
        self._live.update(state=state.value, window=w.number, prompt_tokens=w.prompt_tokens,
                          last_end=w.end_reason or None, last_restart_ms=round(w.restart_ms, 1),
                          last_handover_ms=round(w.handover_ms, 1))
        if state is State.LIVE:
            self.notifier.status(f"window {w.number} live, prompt {w.prompt_tokens} tokens, "
                                 f"last handover {w.handover_ms:.0f} ms")
        self._status_due.set()  # the file is written off the frame loop, right away

    def _on_frame(self) -> None:
        # WATCHDOG=1 comes from the audio loop itself: a stalled loop gets restarted.
        self.notifier.watchdog()

    async def _status_writer(self) -> None:
        """Every second, or at once after a state change, in a thread: never on the loop."""
        while not self._status_closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._status_due.wait(), 1.0)
            self._status_due.clear()
            c = self.controller
            if c is not None:
                self._live.update(frames=c.totals.frames, windows=c.totals.windows,
                                  dead_air_frames=c.totals.dead_air_frames,
                                  audio=vars(c.audio.stats()))
            await asyncio.to_thread(write_status, self.cfg.service.status_file, dict(self._live))

    # ------------------------------------------------------------------ lifecycle

    async def serve(self) -> int:
        from entropi.engine import EngineWorker  # torch loads here, not at import

        cfg = self.cfg
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        t_start = time.perf_counter()
        write_status(cfg.service.status_file, self._live)
        self.notifier.status("loading model")
        worker = EngineWorker(cfg)
        await worker.start()
        try:
            budget = check_budget(cfg, voice_frames=worker.engine.voice_frames)
            clips = ThinkingClips.load(cfg.voice)
            deadline = cfg.secondary_model.deadline_seconds or clips.longest_seconds + 1.0
            log.info("engine ready", voice_frames=budget.voice_frames,
                     context=budget.context_window, needed=budget.needed,
                     load_s=round(time.perf_counter() - t_start, 2),
                     **worker.engine.memory_stats())
            return await self._converse(worker, clips, deadline, t_start)
        finally:
            await worker.close()

    async def _converse(self, worker, clips: ThinkingClips, deadline: float,
                        t_start: float) -> int:
        cfg = self.cfg
        player = ClipPlayer(clips, gap_fill=cfg.voice.clip_gap_fill,
                            noise_dbfs=cfg.voice.comfort_noise_dbfs)
        async with open_llm(cfg.secondary_model) as client:
            memory = MemoryService(cfg.memory, persona_name=cfg.conversation.persona_name)
            await memory.start()
            compactor = Compactor(client, cfg, count_tokens=worker.engine.tokenizer.count,
                                  deadline_s=deadline, ledger_store=store_for(cfg.memory))
            audio = open_audio(cfg.audio)
            await audio.start()
            controller = PersonaPlexController(
                cfg, worker, audio, compactor, memory, player, max_windows=self.opts.max_windows,
                on_window=self._on_window, on_frame=self._on_frame)
            self.controller = controller
            if self._stop_before_ready:
                controller.request_stop()
            self.notifier.ready(status="ready: priming first window")
            log.info("ready", load_s=round(time.perf_counter() - t_start, 2),
                     deadline_s=round(deadline, 2), clips=len(clips))
            t_run = time.perf_counter()
            try:
                totals = await self._supervise(controller)
            finally:
                # Always: fade out, drop LLM work, flush memory, last journal entry, even
                # after a crash. Cancelling first frees llama.cpp from answers nobody needs.
                await audio.close()
                await compactor.aclose()
                totals = controller.totals
                self.summary = summarize(totals, cfg, time.perf_counter() - t_run,
                                         audio.stats(), memory.stats())
                await memory.write_session_end(
                    f"Session ended after {totals.windows} windows "
                    f"({self.summary['audio_seconds']:.0f} s of audio).")
                await memory.stop()
                self.summary["memory_entries_written"] = memory.stats().get("entries_written")
                self.summary["llm_rejected_outputs"] = sum(
                    n for k, n in compactor.counts.items() if k.startswith("rejected:"))
        self._live["state"] = "stopped"
        write_status(cfg.service.status_file, self._live | {"summary": self.summary})
        return EXIT_OK

    async def _supervise(self, controller: PersonaPlexController) -> RunTotals:
        """Run the controller beside the status writer; a crash in either ends both."""
        async with asyncio.TaskGroup() as tg:
            status = tg.create_task(self._status_writer(), name="status-writer")
            run = tg.create_task(controller.run(), name="controller")
            guard = tg.create_task(self._stop_guard(controller), name="stop-guard")
            totals = await run
            # Let a write in flight finish (a thread can't be cancelled) before the final one.
            self._status_closing = True
            self._status_due.set()
            await status
            guard.cancel()
        return totals

    async def _stop_guard(self, controller: PersonaPlexController) -> None:
        """Once stop is requested, the loop gets stop_timeout seconds, then we bail out."""
        while not controller.stopping:
            await asyncio.sleep(0.05)
        await asyncio.sleep(self.cfg.service.stop_timeout_seconds)
        log.error("graceful stop overran", timeout_s=self.cfg.service.stop_timeout_seconds)
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
        log.info("run summary", **daemon.summary)
        if sys.stdout.isatty():  # a person is watching: the log line is for machines
            print(human_summary(daemon.summary))
        if opts.summary_json is not None:
            opts.summary_json.parent.mkdir(parents=True, exist_ok=True)
            opts.summary_json.write_text(json.dumps(daemon.summary, indent=2))
    return code


def human_summary(s: dict[str, Any]) -> str:
    lines = [f"entropi: {s['windows']} windows, {s['audio_seconds']:.1f} s of audio in "
             f"{s['wall_seconds']:.1f} s; dead air {s['dead_air_frames']} frames; "
             f"{s['fallbacks']} compaction fallbacks; handover p50 {s['handover_ms_p50']:.0f} ms"]
    for label, key in (("output WAV", "output_wav"), ("transcript", "transcript_file"),
                       ("journal", "journal_dir"), ("profile", "profile_path")):
        if s.get(key):
            lines.append(f"  {label:<11} {s[key]}")
    return "\n".join(lines)


def _leaves(group: BaseException) -> list[BaseException]:
    if isinstance(group, BaseExceptionGroup):
        return [leaf for sub in group.exceptions for leaf in _leaves(sub)]
    return [group]
