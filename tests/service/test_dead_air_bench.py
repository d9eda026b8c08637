"""Dead air is measurable in fast WAV mode: `bench loop` on a deliberately slow engine
reports dead-air frames (the simulated 80 ms clock), where the normal engine reports none."""

from __future__ import annotations

import argparse
import time

import pytest

from entropi.bench import loop as bench_loop
from entropi.conversation.simclock import SimulatedClock
from entropi.engine.engine import Engine

pytestmark = pytest.mark.slow

SHORT_WINDOWS = {"window.min_seconds": 1.0, "window.max_seconds": 2.0,
                 "window.grace_seconds": 0.5, "window.pause_seconds": 0.3}


def test_slow_engine_produces_dead_air_frames_in_bench_loop(daemon, closed_port, monkeypatch):
    config = daemon.config(**{"secondary_model.backend": "openai",
                              "secondary_model.base_url": f"http://127.0.0.1:{closed_port}/v1",
                              "secondary_model.deadline_seconds": 0.5,
                              "memory.enabled": False, **SHORT_WINDOWS})
    real_step = Engine.step

    def slow_step(self, pcm):
        time.sleep(0.15)  # ~2 frame periods of "model time" per 80 ms frame
        return real_step(self, pcm)

    monkeypatch.setattr(Engine, "step", slow_step)
    result = bench_loop.run(argparse.Namespace(config=str(config), windows=1))
    assert result["windows"] == 1
    live = result["frames"] - 1  # at least the window's frames ran through the slow step
    # Each frame falls 70 ms further behind; past the 3-frame slack every one is late.
    assert result["dead_air_frames"] >= live // 2 > 0, result
    # The slowness is the model's, not the loop's: the loop's own CPU clock stays on time.
    assert result["loop_dead_air_frames"] < result["dead_air_frames"]


def test_simulated_clock_counts_stalls_and_forgives_pacing():
    clock = SimulatedClock(jitter_frames=2)
    assert not any(clock.frame_done(0.01) for _ in range(100))  # fast frames: never late
    clock.frame_done(1.0)  # a 1 s stall of the loop ≈ 12 periods
    late = sum(clock.frame_done(0.001) for _ in range(40))
    assert 8 <= late <= 12  # the frames queued behind the stall, minus the jitter slack
    assert not any(clock.frame_done(0.01) for _ in range(10))  # caught up again
