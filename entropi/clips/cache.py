"""The persona's rendered thinking clips on disk: where they live, when they are stale, and
which take of a line is kept (no torch here).

Layout: ``<voice.rendered_clips_dir or model.cache_dir/thinking>/<voice name>/`` holds
``NN_slug.wav`` (24 kHz mono 16-bit, trimmed, levelled, faded) and ``clips.json``: the voice
file's sha256, the checkpoint id, the render settings, and per clip its line, seed, take and
duration. The folder is current only if all three match the running config; anything else
(voice file edited, another checkpoint, other lines or settings, a clip file missing) is
stale and is rendered again, never reused.

Take rule (cheap, deterministic): a take fits if its trimmed length is within
``[min_clip_seconds, max_clip_seconds]`` and it is not silent. Among the takes that fit, keep
the one with the lowest ``|seconds - expected| / expected + |level - median level| / 20``
(the line's scheduled length; the takes' median active level in dBFS): 1 dB away from the
median costs as much as 5 % away from the expected length. Ties go to the earlier take. If
no take fits, the shortest audible over-long take is cut at ``max_clip_seconds`` (faded out,
logged as ``thinking_clip_cut``) so a daemon still starts; only all-silent or all-too-short
takes are an error.
"""

from __future__ import annotations

import json
import shutil
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from entropi.audio.levels import trim_silence
from entropi.config import Config
from entropi.core.constants import SAMPLE_RATE

META_FILE = "clips.json"
FORMAT = "entropi-thinking-clips"
FORMAT_VERSION = 1
SILENT_TAKE_DBFS = -70.0


@dataclass(frozen=True)
class TakeInfo:
    take: int
    seed: int
    seconds: float  # after trimming edge silence
    level_dbfs: float  # active level before levelling

    def fits(self, low: float, high: float) -> bool:
        return low <= self.seconds <= high and self.level_dbfs > SILENT_TAKE_DBFS


def choose_take(takes: list[TakeInfo], expected_seconds: float, low: float,
                high: float) -> TakeInfo | None:
    """The module docstring's rule; None when no take fits the bounds."""
    fitting = [t for t in takes if t.fits(low, high)]
    if not fitting:
        return None
    median = statistics.median(t.level_dbfs for t in fitting)

    def score(t: TakeInfo) -> float:
        return abs(t.seconds - expected_seconds) / expected_seconds + abs(
            t.level_dbfs - median) / 20.0

    return min(fitting, key=score)  # min() keeps the first of equal scores


def overlong_take(takes: list[TakeInfo], low: float, high: float) -> TakeInfo | None:
    """When no take fits: the shortest audible one that is only too long, else None."""
    long = [t for t in takes if t.seconds > high and t.level_dbfs > SILENT_TAKE_DBFS]
    return min(long, key=lambda t: t.seconds) if long else None


def trim_take(raw: np.ndarray) -> np.ndarray:
    """Raw rendered audio → the spoken part: DC offset removed (Mimi's decoder can leave one,
    which a fade would turn into a thump), then leading/trailing near-silence cut."""
    raw = np.asarray(raw, dtype=np.float32)
    return trim_silence(raw - np.float32(raw.mean()))


def voice_name(cfg: Config) -> str:
    return cfg.voice.prompt_file.split(".", 1)[0] or "voice"


def cache_folder(cfg: Config) -> Path:
    root = cfg.voice.rendered_clips_dir or cfg.model.cache_dir / "thinking"
    return Path(root) / voice_name(cfg)


def checkpoint_id(moshi_weights: Path, mimi_weights: Path) -> str:
    """Cheap identity of the weights (hashing 16 GB at every start is not): the parent folder
    (the hub snapshot's revision, or the tiny model's version and seed), file name and size."""
    def one(p: Path) -> str:
        p = Path(p)
        return f"{p.parent.name}/{p.name}:{p.stat().st_size}"
    return f"{one(moshi_weights)} {one(mimi_weights)}"


def render_settings(cfg: Config) -> dict[str, Any]:
    """Everything in the config that changes what a rendered clip sounds like."""
    v, s = cfg.voice, cfg.sampling
    return {"lines": list(v.thinking_lines), "min_clip_seconds": v.min_clip_seconds,
            "max_clip_seconds": v.max_clip_seconds, "clip_level_dbfs": v.clip_level_dbfs,
            "render": v.render.model_dump(),
            "audio_temp": v.render.audio_temp if v.render.audio_temp is not None else s.audio_temp,
            "audio_topk": v.render.audio_topk if v.render.audio_topk is not None else s.audio_topk,
            "use_sampling": s.use_sampling}


def expected_key(cfg: Config, voice_sha256: str, ckpt_id: str) -> dict[str, Any]:
    return {"format": FORMAT, "version": FORMAT_VERSION, "voice_file": cfg.voice.prompt_file,
            "voice_sha256": voice_sha256, "checkpoint": ckpt_id, "settings": render_settings(cfg)}


def read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def stale_reason(folder: Path, key: dict[str, Any]) -> str | None:
    """None if the folder holds current clips for ``key``; else why not, in a few words."""
    meta = read_meta(folder)
    if meta is None:
        return "not rendered yet"
    for field, reason in (("version", "older cache format"),
                          ("voice_sha256", "the voice file changed"),
                          ("checkpoint", "another checkpoint"),
                          ("settings", "thinking lines or render settings changed")):
        if meta.get(field) != key[field]:
            return reason
    clips = meta.get("clips") or []
    if not clips or any(not (folder / c.get("file", "")).is_file() for c in clips):
        return "a clip file is missing"
    return None


@dataclass(frozen=True)
class RenderedClip:
    file: str  # NN_slug.wav
    line: str
    pcm: np.ndarray  # final audio (levelled, faded)
    chosen: TakeInfo
    takes: tuple[TakeInfo, ...]

    def meta(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "take": self.chosen.take,
                "seed": self.chosen.seed, "duration_s": round(self.pcm.size / SAMPLE_RATE, 3),
                "takes": [asdict(t) for t in self.takes]}


def write_cache(folder: Path, clips: list[RenderedClip], key: dict[str, Any],
                extra: dict[str, Any]) -> None:
    """Write into a sibling folder, then swap it in: a crash never leaves half a cache."""
    from entropi.audio.wav import write_wav

    tmp = folder.with_name(folder.name + ".rendering")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for clip in clips:
        write_wav(tmp / clip.file, clip.pcm)
    meta = key | extra | {"clips": [c.meta() for c in clips]}
    (tmp / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.replace(old)
    tmp.replace(folder)
    shutil.rmtree(old, ignore_errors=True)
