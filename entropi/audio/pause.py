"""Where to end a window: both sides quiet for a while (user energy VAD + agent text stream).

The agent is silent while its text stream emits only PAD / EPAD (and other special ids);
the user is silent while their frame level stays under ``window.vad_threshold_dbfs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from entropi.audio.levels import rms_dbfs
from entropi.config import WindowSection
from entropi.constants import FRAME_SECONDS, TEXT_SPECIAL_IDS

CutReason = Literal["pause", "max", "forced"]

# Past max_seconds the window is overdue: a short gap between words (3 frames = 240 ms)
# is taken instead of waiting for a full pause, so the cut still avoids cutting mid-word.
OVERDUE_PAUSE_SECONDS = 0.24


@dataclass(frozen=True)
class Cut:
    reason: CutReason
    seconds: float  # window time when the cut was decided


class PauseDetector:
    """Feed one frame at a time; returns a Cut once per window (``reset`` starts the next)."""

    def __init__(self, window: WindowSection) -> None:
        self.cfg = window
        self._pause_frames = max(1, round(window.pause_seconds / FRAME_SECONDS))
        self._overdue_frames = max(1, min(self._pause_frames,
                                          round(OVERDUE_PAUSE_SECONDS / FRAME_SECONDS)))
        self.reset()

    def reset(self) -> None:
        self.frames = 0
        self.quiet_frames = 0  # consecutive frames with both sides silent
        self.user_active = False
        self.agent_active = False
        self.cut: Cut | None = None

    @property
    def seconds(self) -> float:
        return self.frames * FRAME_SECONDS

    @property
    def pause_frames(self) -> int:
        """Frames of silence on both sides that make a pause."""
        return self._pause_frames

    def pause_cut_in(self) -> int | None:
        """Frames until a pause cut if the current silence lasts; None while someone talks."""
        if self.quiet_frames == 0:
            return None
        min_frames = round(self.cfg.min_seconds / FRAME_SECONDS)
        return max(self.frames - self.quiet_frames + self._pause_frames, min_frames) - self.frames

    def update(self, user_pcm: np.ndarray, agent_token: int | None) -> Cut | None:
        if self.cut is not None:
            return None  # already decided for this window; the daemon resets it
        self.frames += 1
        self.user_active = rms_dbfs(user_pcm) > self.cfg.vad_threshold_dbfs
        # None: the model produced no token yet (acoustic delay), i.e. not speaking.
        self.agent_active = agent_token is not None and agent_token not in TEXT_SPECIAL_IDS
        quiet = not (self.user_active or self.agent_active)
        self.quiet_frames = self.quiet_frames + 1 if quiet else 0
        seconds = self.seconds
        cfg = self.cfg
        # Frame counts, not float seconds, decide the thresholds (no rounding drift).
        overdue = self.frames >= round(cfg.max_seconds / FRAME_SECONDS)
        if overdue and self.quiet_frames >= self._overdue_frames:
            self.cut = Cut("max", seconds)
        elif self.frames >= round((cfg.max_seconds + cfg.grace_seconds) / FRAME_SECONDS):
            self.cut = Cut("forced", seconds)
        elif (not overdue and self.frames >= round(cfg.min_seconds / FRAME_SECONDS)
              and self.quiet_frames >= self._pause_frames):
            self.cut = Cut("pause", seconds)
        return self.cut
