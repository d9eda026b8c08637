"""Thinking clips: short "hmm, let me think" WAVs played while the window is compacted.

``ThinkingClips.load`` reads every WAV of ``voice.thinking_clips`` once: resampled to 24 kHz
mono, edge silence trimmed, loudness-matched, 10 ms fades. ``ClipPlayer`` turns them into an
endless frame stream: a clip, then (``gap_fill: clip``) a short comfort-noise gap and another
clip, never the same one twice in a row, or (``gap_fill: comfort_noise``) comfort noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from entropi.audio.levels import active_dbfs, apply_fades, trim_silence
from entropi.audio.wav import read_wav
from entropi.config import VoiceSection
from entropi.core.constants import FRAME_SIZE, SAMPLE_RATE
from entropi.core.errors import InputError
from entropi.core.logs import get_logger

log = get_logger(__name__)

DEFAULT_TARGET_DBFS = -23.0  # typical active level of Moshi's speech output
PEAK_LIMIT = 0.89  # -1 dBFS: loudness matching must never clip
FADE_SECONDS = 0.010
SILENT_CLIP_DBFS = -70.0


@dataclass(frozen=True)
class ThinkingClips:
    clips: tuple[np.ndarray, ...]
    names: tuple[str, ...]
    target_dbfs: float

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def longest_seconds(self) -> float:
        """The longest clip: the default compaction deadline is this plus one second."""
        return max(c.size for c in self.clips) / SAMPLE_RATE

    @classmethod
    def load(cls, voice: VoiceSection, target_dbfs: float | None = None,
             folder: Path | None = None, quiet: bool = False) -> ThinkingClips:
        """Read the clip folder (``voice.thinking_clips`` unless ``folder`` is given, e.g. the
        persona's rendered clips); InputError names the folder or file and the fix."""
        folder = Path(voice.thinking_clips if folder is None else folder)
        hint = "run scripts/make_thinking_clips.sh or point voice.thinking_clips at WAV clips"
        if not folder.is_dir():
            raise InputError(f"voice.thinking_clips: {folder} is not a folder; {hint}")
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav")
        if not paths:
            raise InputError(f"voice.thinking_clips: {folder} holds no .wav clips; {hint}")
        target = DEFAULT_TARGET_DBFS if target_dbfs is None else target_dbfs
        clips = tuple(_prepare(p, voice.max_clip_seconds, target) for p in paths)
        if not quiet:  # check-config loads them only to check them
            log.info("thinking_clips_loaded", folder=str(folder), clips=len(clips),
                     target_dbfs=target)
        return cls(clips, tuple(p.name for p in paths), target)


def _prepare(path: Path, max_seconds: float, target_dbfs: float) -> np.ndarray:
    # Edge silence is trimmed before the length check; the header check refuses a file that
    # is absurdly long before it is decoded.
    pcm = trim_silence(read_wav(path, max_seconds=max(4 * max_seconds, 10.0)))
    seconds = pcm.size / SAMPLE_RATE
    if seconds > max_seconds:
        raise InputError(f"{path}: thinking clip is {seconds:.2f} s long, over "
                         f"voice.max_clip_seconds ({max_seconds:g} s); shorten it")
    if active_dbfs(pcm) < SILENT_CLIP_DBFS:
        raise InputError(f"{path}: thinking clip is silent ({active_dbfs(pcm):.0f} dBFS); "
                         f"replace it")
    return level_and_fade(pcm, target_dbfs)


def level_and_fade(pcm: np.ndarray, target_dbfs: float) -> np.ndarray:
    """Gain to ``target_dbfs`` active level (never past -1 dBFS peak), then 10 ms fades."""
    level = active_dbfs(pcm)
    gain = 10.0 ** ((target_dbfs - level) / 20.0)
    peak = float(np.max(np.abs(pcm)))
    if peak > 0:
        gain = min(gain, PEAK_LIMIT / peak)
    return apply_fades(pcm * gain, FADE_SECONDS)


GapFill = Literal["clip", "comfort_noise"]


class ClipPlayer:
    """Always returns a full frame: clip audio, a gap / comfort noise, the next clip."""

    def __init__(self, clips: ThinkingClips, gap_fill: GapFill = "clip",
                 noise_dbfs: float = -60.0, gap_seconds: float = 0.4,
                 seed: int | None = None) -> None:
        if not len(clips):
            raise ValueError("ClipPlayer needs at least one clip")
        self.clips = clips
        self.gap_fill = gap_fill
        self.noise_std = 10.0 ** (noise_dbfs / 20.0)
        self.gap_samples = int(gap_seconds * SAMPLE_RATE)
        self._rng = np.random.default_rng(seed)
        self._last: int | None = None
        self._segment = np.zeros(0, dtype=np.float32)
        self._pos = 0
        self._in_clip = False
        self._active = False
        self.clips_played = 0  # clips started since the last start()

    @property
    def clip_frames_remaining(self) -> int:
        """Whole frames of the current clip still to play (0 in a gap or comfort noise)."""
        if not self._in_clip:
            return 0
        return -(-(self._segment.size - self._pos) // FRAME_SIZE)

    @property
    def last_clip(self) -> str | None:
        return None if self._last is None else self.clips.names[self._last]

    def start(self) -> None:
        """Begin a new clip on the next frame (never the one that played last)."""
        self.clips_played = 0
        self._active = True
        self._begin_clip()

    def stop(self) -> None:
        """Back to comfort noise (the daemon switches to model audio after the clip ends)."""
        self._active = False
        self._in_clip = False
        self._segment, self._pos = np.zeros(0, dtype=np.float32), 0

    def next_frame(self) -> np.ndarray:
        out = np.empty(FRAME_SIZE, dtype=np.float32)
        filled = 0
        while filled < FRAME_SIZE:
            if self._pos >= self._segment.size:
                self._advance()
            take = min(FRAME_SIZE - filled, self._segment.size - self._pos)
            out[filled:filled + take] = self._segment[self._pos:self._pos + take]
            filled += take
            self._pos += take
        return out

    def _advance(self) -> None:
        """The current segment ran out: choose what plays next."""
        if self._in_clip and self.gap_fill == "clip" and self._active:
            self._in_clip = False
            self._set_noise(max(self.gap_samples, 1))
        elif not self._in_clip and self.gap_fill == "clip" and self._active:
            self._begin_clip()
        else:
            self._in_clip = False
            self._set_noise(FRAME_SIZE)

    def _begin_clip(self) -> None:
        n = len(self.clips)
        choices = [i for i in range(n) if i != self._last] if n > 1 else [0]
        index = int(self._rng.choice(choices))
        self._last = index
        self._segment, self._pos = self.clips.clips[index], 0
        self._in_clip = True
        self.clips_played += 1

    def _set_noise(self, samples: int) -> None:
        noise = self._rng.standard_normal(samples).astype(np.float32) * self.noise_std
        self._segment, self._pos = noise, 0
