"""Counters shared by every audio backend."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AudioStats:
    """What happened to frames so far (counts of 80 ms frames unless noted).

    frames_in: frames captured (device callback) or read (WAV).
    frames_out: frames handed to the speaker / written to the WAV (silence fill included).
    xruns: device callbacks that PortAudio flagged (input/output under- or overflow).
    overflows: of those, callbacks flagged as input overflow (samples lost by the device).
    underruns: frames of silence played because no audio was queued (dead air).
    late_frames: frames the consumer picked up more than one frame period after they were due.
    dropped_in: captured frames discarded (oldest first) because the consumer fell behind.
    dropped_out: written frames discarded (oldest first) because the output queue was full.
    callbacks: device callbacks run (0 for WAV-only runs).
    """

    frames_in: int = 0
    frames_out: int = 0
    xruns: int = 0
    overflows: int = 0
    underruns: int = 0
    late_frames: int = 0
    dropped_in: int = 0
    dropped_out: int = 0
    callbacks: int = 0
