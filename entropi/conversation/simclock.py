"""A simulated 80 ms audio clock for fast WAV runs, so dead air can be counted there too.

Fast mode reads the WAV as quickly as the loop can go, so nothing is ever "late" in wall
time. This clock replays the run against real time instead: input frame ``k`` arrives at
``(k + 1) × 80 ms``; the loop starts it no earlier than that, spends the frame's *busy* time
on it (model step, orchestration, any stall of the event loop), and its output must be ready
before the speaker needs it, ``1 + jitter_frames`` periods after it arrived (the device path
buffers ``jitter_frames`` before playing). A frame finished after that is a dead-air frame,
as a real device would have played silence for it. Pacing waits (the thinking-clip frames
waiting on the handover, at most one period each) are idle time, not busy time.
"""

from __future__ import annotations

from entropi.core.constants import FRAME_SECONDS


class SimulatedClock:
    def __init__(self, jitter_frames: int, period: float = FRAME_SECONDS) -> None:
        self.period = period
        self.slack = (1 + jitter_frames) * period
        self.now = 0.0  # simulated seconds since the first input frame was due
        self.frames = 0
        self.late = 0

    def frame_done(self, busy_s: float) -> bool:
        """Account one frame that kept the loop ``busy_s`` seconds; True if it was late."""
        due = (self.frames + 1) * self.period
        self.now = max(self.now, due) + max(0.0, busy_s)
        self.frames += 1
        late = self.now > due + self.slack
        self.late += late
        return late
