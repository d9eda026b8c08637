"""Where to end a window: both sides quiet for a while (user voice activity + agent text).

The agent is silent while its text stream emits only PAD / EPAD (and other special ids);
the user is silent while the voice-activity decision (``entropi.hearing.vad``: silero, or
the frame level under ``window.vad_threshold_dbfs``) says so.

A silence of up to ``WORD_GAP_SECONDS`` is a gap between two words, never a pause: it
neither ends an overdue window ("call your dad on Sunday" | "at 6 pm") nor counts as a
pause that could end the window (``in_pause``, which starts speculative compaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from entropi.audio.levels import rms_dbfs
from entropi.config import WindowSection
from entropi.core.constants import FRAME_SECONDS, TEXT_SPECIAL_IDS

CutReason = Literal["pause", "max", "forced"]

# Silences this long or shorter are gaps between words and breaths inside a sentence.
WORD_GAP_SECONDS = 0.32
# Past max_seconds the window is overdue: a real but shorter pause (a sentence end) is taken
# instead of waiting the full pause_seconds; the grace's forced cut bounds the wait.
OVERDUE_PAUSE_SECONDS = 0.48


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
        self._gap_frames = round(WORD_GAP_SECONDS / FRAME_SECONDS)
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

    @property
    def in_pause(self) -> bool:
        """The current silence is already longer than a gap between words."""
        return self.quiet_frames > min(self._gap_frames, self._pause_frames - 1)

    def pause_cut_in(self) -> int | None:
        """Frames until a pause cut if the current silence lasts; None while someone talks."""
        if self.quiet_frames == 0:
            return None
        min_frames = round(self.cfg.min_seconds / FRAME_SECONDS)
        return max(self.frames - self.quiet_frames + self._pause_frames, min_frames) - self.frames

    def update(self, user_pcm: np.ndarray | None, agent_token: int | None,
               user_active: bool | None = None) -> Cut | None:
        """``user_active``: the voice-activity decision for this frame (None: the energy rule
        on ``user_pcm``)."""
        if self.cut is not None:
            return None  # already decided for this window; the daemon resets it
        self.frames += 1
        if user_active is None:
            user_active = rms_dbfs(user_pcm) > self.cfg.vad_threshold_dbfs
        self.user_active = user_active
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
