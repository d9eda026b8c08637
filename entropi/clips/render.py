"""Thinking clips in the persona's own voice, spoken by PersonaPlex itself.

For each take of a line the engine speaks the line's text schedule (:mod:`entropi.clips.lines`)
with the persona primed (:mod:`entropi.engine.takes`: forced text, live state preserved); here
the audio is trimmed, a take is chosen (``cache.choose_take``), levelled, faded and cached.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from entropi.audio.levels import active_dbfs
from entropi.clips.cache import (
    RenderedClip,
    TakeInfo,
    cache_folder,
    checkpoint_id,
    choose_take,
    expected_key,
    overlong_take,
    stale_reason,
    trim_take,
    write_cache,
)
from entropi.clips.lines import LinePlan, plan_lines
from entropi.clips.player import ThinkingClips, level_and_fade
from entropi.config import Config
from entropi.core.constants import FRAME_SIZE, SAMPLE_RATE
from entropi.core.errors import InputError
from entropi.core.logs import get_logger
from entropi.engine.checkpoints import Checkpoint
from entropi.engine.engine import Engine
from entropi.engine.takes import render_take, rendering
from entropi.engine.voice import file_sha256

log = get_logger(__name__)

Progress = Callable[[int, int, str], None]  # (takes done, takes in all, current line)


# --------------------------------------------------------------------------- clips


@dataclass(frozen=True)
class RenderStats:
    clips: int
    takes: int
    frames: int
    seconds: float
    cpu_seconds: float  # the rendering thread's own CPU time: steadier on a busy machine

    def as_dict(self) -> dict[str, Any]:
        return {"clips": self.clips, "takes": self.takes, "frames": self.frames,
                "render_s": round(self.seconds, 3), "cpu_s": round(self.cpu_seconds, 3),
                "cpu_s_per_clip": round(self.cpu_seconds / max(1, self.clips), 3),
                "seconds_per_clip": round(self.seconds / max(1, self.clips), 3),
                "seconds_per_take": round(self.seconds / max(1, self.takes), 3),
                "frames_per_s": round(self.frames / max(self.seconds, 1e-9), 1),
                "audio_s_per_s": round(self.frames * FRAME_SIZE / SAMPLE_RATE
                                       / max(self.seconds, 1e-9), 2)}


def render_line(engine: Engine, cfg: Config, plan: LinePlan,
                on_take: Callable[[], None] | None = None) -> RenderedClip:
    v = cfg.voice
    takes: list[TakeInfo] = []
    audio: dict[int, np.ndarray] = {}
    for t in range(v.render.takes):
        seed = v.render.seed + 1000 * plan.index + t
        raw, _ = render_take(engine, plan.text, cfg.conversation.first_prompt, seed)
        pcm = trim_take(raw)
        takes.append(TakeInfo(t, seed, round(pcm.size / SAMPLE_RATE, 3),
                              round(active_dbfs(pcm), 2)))
        audio[t] = pcm
        if on_take is not None:
            on_take()
    best = choose_take(takes, plan.expected_seconds, v.min_clip_seconds, v.max_clip_seconds)
    if best is None:  # a service should still start: cut the shortest over-long take
        best = overlong_take(takes, v.min_clip_seconds, v.max_clip_seconds)
        if best is None:
            lengths = ", ".join(f"{t.seconds:.2f} s at {t.level_dbfs:.0f} dBFS" for t in takes)
            raise InputError(
                f"{plan.where()}: every take was silent or shorter than "
                f"voice.min_clip_seconds ({v.min_clip_seconds:g} s) (takes: {lengths}); "
                f"change the line or raise voice.render.takes")
        log.warning("thinking_clip_cut", line=plan.line, seconds=best.seconds,
                    max_clip_seconds=v.max_clip_seconds)
        audio[best.take] = audio[best.take][: int(v.max_clip_seconds * SAMPLE_RATE)]
    pcm = level_and_fade(audio[best.take], v.clip_level_dbfs)
    return RenderedClip(f"{plan.slug}.wav", plan.line, pcm, best, tuple(takes))


def render_clips(engine: Engine, cfg: Config, plans: list[LinePlan],
                 progress: Progress | None = None) -> tuple[list[RenderedClip], RenderStats]:
    """Every line, every take; the live state is restored afterwards."""
    started, cpu = time.perf_counter(), time.thread_time()
    total, done = len(plans) * cfg.voice.render.takes, 0
    clips: list[RenderedClip] = []
    with rendering(engine, cfg):
        for plan in plans:
            def step(plan: LinePlan = plan) -> None:
                nonlocal done
                done += 1
                if progress is not None:
                    progress(done, total, plan.line)
            clips.append(render_line(engine, cfg, plan, step))
            log.info("thinking_clip_rendered", line=plan.line, take=clips[-1].chosen.take,
                     seconds=round(clips[-1].pcm.size / SAMPLE_RATE, 2))
    frames = total and sum(len(p.text) for p in plans) * cfg.voice.render.takes
    return clips, RenderStats(len(clips), total, frames, time.perf_counter() - started,
                              time.thread_time() - cpu)


def cache_key(cfg: Config, ckpt: Checkpoint) -> dict[str, Any]:
    """What the cache folder must have been rendered from (voice sha, checkpoint, settings)."""
    return expected_key(cfg, file_sha256(cfg.voice.prompt_path),
                        checkpoint_id(ckpt.moshi_weights, ckpt.mimi_weights))


def render_to_cache(engine: Engine, cfg: Config, progress: Progress | None = None
                    ) -> RenderStats:
    plans = plan_lines(engine.tokenizer, cfg.voice)
    key = cache_key(cfg, engine.models.checkpoint)
    clips, stats = render_clips(engine, cfg, plans, progress)
    folder = cache_folder(cfg)
    write_cache(folder, clips, key, {"prompt": cfg.conversation.first_prompt,
                                     "render_s": round(stats.seconds, 3)})
    log.info("thinking_clips_cached", folder=str(folder), **stats.as_dict())
    return stats


def terminal_progress(stream: Any = None) -> Progress | None:
    """A one-line progress bar on a terminal; None (log lines only) otherwise."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return None

    def show(done: int, total: int, line: str) -> None:
        width = 24
        bar = "#" * (width * done // total) + "-" * (width - width * done // total)
        stream.write(f"\rrendering thinking clips [{bar}] {done}/{total} {line[:30]:<30}")
        if done == total:
            stream.write("\n")
        stream.flush()
    return show


# --------------------------------------------------------------------------- daemon


def thinking_clips(engine: Engine, cfg: Config, may_render: bool = True) -> ThinkingClips:
    """The clips the daemon plays (before READY, on the engine's thread).

    The persona's rendered clips when current; missing or stale ones are rendered first with
    ``voice.render_clips: auto``; with ``cached`` the bundled clips play after one warning
    naming the command; ``never`` always plays ``voice.thinking_clips`` (recorded clips).
    ``may_render=False`` (a caller's voice, chosen while they wait) never renders.
    """
    v = cfg.voice
    level = v.clip_level_dbfs
    if v.render_clips == "never":
        return _loaded(ThinkingClips.load(v, level), "bundled", v.thinking_clips, "render_never")
    folder = cache_folder(cfg)
    reason = stale_reason(folder, cache_key(cfg, engine.models.checkpoint))
    if reason is not None and v.render_clips == "auto" and may_render:
        log.info("thinking_clips_render", folder=str(folder), reason=reason)
        render_to_cache(engine, cfg, terminal_progress())
        reason = None
    if reason is None:
        return _loaded(ThinkingClips.load(v, level, folder=folder), "rendered", folder, "")
    config = cfg.source_path or "PATH"
    log.warning("thinking_clips_bundled", reason=reason, folder=str(folder),
                fix=f"entropi cache-clips --config {config}")
    return _loaded(ThinkingClips.load(v, level), "bundled", v.thinking_clips, reason)


def _loaded(clips: ThinkingClips, kind: str, folder: Any, reason: str) -> ThinkingClips:
    log.info("thinking_clips", set=kind, folder=str(folder), clips=len(clips),
             **({"reason": reason} if reason else {}))
    return clips
