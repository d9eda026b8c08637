"""Thinking clips in the persona's own voice, spoken by PersonaPlex itself.

For each take of a line: prime the engine with the persona (the daemon's voice snapshot plus
``conversation.first_prompt``), seed, then step with a silent user while every sampled text
token is replaced by the line's schedule (``clip_lines``). The replacement happens in LMGen's
``on_text_hook``, in place, before the depformer runs, so the agent's audio codebooks are
sampled **conditioned on the forced text**, and the forced token is what LMGen writes back
into its cache for the next step. Mimi decodes the agent's codes; the audio is trimmed, a take
is chosen (``clip_cache.choose_take``), levelled and faded.

Rendering never disturbs the conversation: the live streaming state (KV caches, LMGen, Mimi),
the torch RNG and the sampling settings are saved first and put back in place afterwards.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from entropi.audio.clip_cache import (
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
from entropi.audio.clips import ThinkingClips, level_and_fade
from entropi.audio.levels import active_dbfs
from entropi.config import Config
from entropi.constants import FRAME_SIZE, SAMPLE_RATE
from entropi.engine.checkpoints import Checkpoint
from entropi.engine.clip_lines import LinePlan, plan_lines
from entropi.engine.engine import Engine
from entropi.engine.snapshot import Snapshot
from entropi.engine.voice import file_sha256
from entropi.errors import InputError
from entropi.logs import get_logger

log = get_logger(__name__)

Progress = Callable[[int, int, str], None]  # (takes done, takes in all, current line)


# --------------------------------------------------------------------------- engine state


@contextmanager
def preserved_state(engine: Engine) -> Iterator[None]:
    """Whatever runs inside leaves the live conversation exactly as it found it."""
    with torch.inference_mode():
        live = Snapshot(engine.snapshot.modules)
    cuda = engine.device.type == "cuda"
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state(engine.device) if cuda else None
    gen = engine.lm_gen
    saved = (gen.on_text_hook, gen.temp, gen.top_k, gen._streaming_state.graphed_depth)
    try:
        yield
    finally:
        gen.on_text_hook, gen.temp, gen.top_k, gen._streaming_state.graphed_depth = saved
        with torch.inference_mode():
            live.restore()
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state(cuda_rng, engine.device)


def use_render_sampling(engine: Engine, cfg: Config) -> None:
    """Apply ``voice.render.audio_temp/topk`` (call inside :func:`preserved_state`).

    A captured CUDA graph of the depformer has the live temperature baked in, so when the
    render settings differ it runs uncaptured while rendering (slower, but correct).
    """
    r, gen = cfg.voice.render, engine.lm_gen
    temp = gen.temp if r.audio_temp is None else r.audio_temp
    top_k = gen.top_k if r.audio_topk is None else r.audio_topk
    if (temp, top_k) != (gen.temp, gen.top_k):
        gen.temp, gen.top_k = temp, top_k
        gen._streaming_state.graphed_depth = gen.depformer_step


@contextmanager
def forced_text(engine: Engine, tokens: tuple[int, ...]) -> Iterator[list[int]]:
    """Replace the sampled text token of the next ``len(tokens)`` steps, in order."""
    gen, fed = engine.lm_gen, []

    def hook(text_token: torch.Tensor) -> None:
        if len(fed) < len(tokens):
            text_token.fill_(tokens[len(fed)])  # in place: the depformer sees this token
            fed.append(tokens[len(fed)])

    previous, gen.on_text_hook = gen.on_text_hook, hook
    try:
        yield fed
    finally:
        gen.on_text_hook = previous


def render_take(engine: Engine, plan: LinePlan, prompt: str, seed: int) -> tuple[np.ndarray,
                                                                                 list[int]]:
    """One take: the raw 24 kHz agent audio and the text stream's tokens, frame by frame.
    (The text stream shows each step's token one frame later, so ``tokens[1:]`` is
    ``plan.text[:-1]``.) Call inside :func:`preserved_state`."""
    engine.prime(prompt)
    torch.manual_seed(seed)
    silence = np.zeros(FRAME_SIZE, dtype=np.float32)
    pcm: list[np.ndarray] = []
    tokens: list[int] = []
    with forced_text(engine, plan.text):
        for _ in plan.text:
            out = engine.step(silence)
            pcm.append(out.pcm)
            tokens.append(out.token)
    return np.concatenate(pcm), tokens


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
        raw, _ = render_take(engine, plan, cfg.conversation.first_prompt, seed)
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
    with torch.inference_mode(), preserved_state(engine):
        use_render_sampling(engine, cfg)
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
