"""One conversation from prime to flush, on the shared engine and LLM.

A session owns what is one person's: the controller (state machine), the compactor, the
memory writers and the clip player. The daemon runs one for the local transport; the callers
loop runs one per remote call. Whatever ends it (hang-up, SIGTERM, a crash), the audio
fades out, LLM work is dropped, memory is flushed and the session's last journal entry is
written before :meth:`Session.run` returns the conversation's summary.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from entropi.clips.player import ClipPlayer, ThinkingClips
from entropi.compaction.compactor import Compactor
from entropi.config import Config
from entropi.conversation.controller import PersonaPlexController, RunTotals
from entropi.core.constants import FRAME_SECONDS
from entropi.core.percentiles import percentile
from entropi.hearing.turns import TurnTranscriber
from entropi.memory.ledger import store_for
from entropi.memory.service import MemoryService
from entropi.transports.base import AudioTransport


def summarize(totals: RunTotals, cfg: Config, seconds: float,
              audio_stats: Any | None = None, memory_stats: dict | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "windows": totals.windows,
        "frames": totals.frames,
        "live_frames": totals.live_frames,
        "dead_air_frames": totals.dead_air_frames,
        "loop_dead_air_frames": totals.loop_dead_air_frames,
        "fallbacks": totals.fallbacks,
        "clips_played": totals.clips_played,
        "overhead_ms_p50": percentile(totals.overhead_ms, 50, 4),
        "overhead_ms_p99": percentile(totals.overhead_ms, 99, 4),
        "handover_ms_p50": percentile(totals.handover_ms, 50, 1),
        "handover_ms_p99": percentile(totals.handover_ms, 99, 1),
        "compaction_ms_p50": percentile(totals.compaction_ms, 50, 1),
        "restart_ms_p50": percentile(totals.restart_ms, 50, 2),
        "distinct_prompts": len(set(totals.prompts)),
        "wall_seconds": round(seconds, 2),
        "audio_seconds": round(totals.frames * FRAME_SECONDS, 2),
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


class Session:
    def __init__(self, cfg: Config, worker: Any, client: Any, clips: ThinkingClips,
                 deadline: float, audio: AudioTransport, *, asr: TurnTranscriber | None,
                 max_windows: int | None, on_window: Any = None, on_frame: Any = None,
                 on_user_turn: Any = None) -> None:
        self.cfg = cfg
        self.audio = audio
        self.asr = asr
        self.player = ClipPlayer(clips, gap_fill=cfg.voice.clip_gap_fill,
                                 noise_dbfs=cfg.voice.comfort_noise_dbfs)
        self.memory = MemoryService(cfg.memory, persona_name=cfg.conversation.persona_name)
        self.compactor = Compactor(client, cfg, count_tokens=worker.engine.tokenizer.count,
                                   deadline_s=deadline, ledger_store=store_for(cfg.memory))
        self.controller = PersonaPlexController(
            cfg, worker, audio, self.compactor, self.memory, self.player,
            max_windows=max_windows, on_window=on_window, on_frame=on_frame, asr=asr,
            on_user_turn=on_user_turn)

    async def run(self, drive: Callable[[PersonaPlexController], Awaitable[RunTotals]]
                  ) -> dict[str, Any]:
        """Start memory, let ``drive`` run the controller, then always flush; the summary."""
        await self.memory.start()
        t_run = time.perf_counter()
        try:
            await drive(self.controller)
        finally:
            # Always: fade out, drop LLM work, flush memory, last journal entry, even
            # after a crash. Cancelling first frees llama.cpp from answers nobody needs.
            await self.audio.close()
            await self.compactor.aclose()
            summary = await self._flush(time.perf_counter() - t_run)
        return summary

    async def _flush(self, seconds: float) -> dict[str, Any]:
        totals, memory, compactor = self.controller.totals, self.memory, self.compactor
        if totals.user_spoke:  # nobody spoke (a caller who hung up silent): nothing to keep
            await memory.write_session_end(
                f"Session ended after {totals.windows} windows "
                f"({totals.frames * FRAME_SECONDS:.0f} s of audio).")
        await memory.stop()  # its stats are final only now: the writers have drained
        summary = summarize(totals, self.cfg, seconds, self.audio.stats(), memory.stats())
        if self.asr is not None:
            summary |= {"asr_turns": self.asr.turns, "asr_failures": self.asr.failures}
        summary["llm_rejected_outputs"] = sum(
            n for k, n in compactor.counts.items() if k.startswith("rejected:"))
        return summary
