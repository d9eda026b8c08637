"""`entropi bench engine` end to end on the tiny model, with the stock-moshi side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from entropi.engine.tiny import TinyPaths
from tests.engine.conftest import TINY_SEED


def test_bench_engine_json_with_stock_reference(tiny: TinyPaths, cache_dir: Path, tmp_path):
    config = tmp_path / "bench.yaml"
    config.write_text(f"model:\n  source: tiny\n  tiny_seed: {TINY_SEED}\n"
                      f"  cache_dir: {cache_dir}\n"
                      "runtime:\n  device: cpu\n  context_window: 500\n  torch_threads: 1\n"
                      "conversation:\n  prompt_token_budget: 150\n")
    proc = subprocess.run(
        [sys.executable, "-m", "entropi", "bench", "engine", "--config", str(config),
         "--random-weights", "tiny", "--frames", "12", "--repeats", "2", "--voice-seconds", "2",
         "--prompt-tokens", "40", "--stock", "--json", "--log-level", "warning"],
        capture_output=True, text=True, timeout=240,
        env={**os.environ, "NO_TORCH_COMPILE": "1", "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["weights"] == "tiny" and r["voice_frames"] == 25 and r["prompt_tokens"] >= 40
    # The per-step reference steps every prefix frame; the fast path needs a handful of passes.
    assert r["restart_full_steps"] == 25 + 6 + r["prompt_tokens"] + 6
    assert 1 <= r["restart_fast_passes"] < 10
    for key in ("frame_ms_p50", "frame_ms_p99", "frame_cpu_ms_p50", "step_ms_p50",
                "restart_full_ms", "restart_fast_ms", "stock_frame_ms_p50", "stock_frame_ms_p99"):
        assert r[key] > 0, key
    assert r["ratio_frame_p99"] == r["stock_frame_ms_p99"] / r["frame_ms_p99"]
    # Stock's restart is its own measurement (stock LMGen stepped over the same prefix
    # length), not a copy of entropi's per-step reference.
    assert r["stock_restart_steps"] == r["restart_full_steps"]
    assert r["stock_restart_ms"] > 0 and r["stock_restart_ms"] != r["restart_full_ms"]
    assert r["ratio_restart"] == r["stock_restart_ms"] / r["restart_fast_ms"]


def test_bench_engine_batch_reports_every_batch_size(tiny: TinyPaths, cache_dir: Path, tmp_path):
    config = tmp_path / "bench.yaml"
    config.write_text(f"model:\n  source: tiny\n  tiny_seed: {TINY_SEED}\n"
                      f"  cache_dir: {cache_dir}\n"
                      "runtime:\n  device: cpu\n  context_window: 500\n  torch_threads: 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "entropi", "bench", "engine", "--config", str(config),
         "--random-weights", "tiny", "--frames", "12", "--voice-seconds", "2",
         "--prompt-tokens", "40", "--batch", "2", "--json", "--log-level", "warning"],
        capture_output=True, text=True, timeout=240,
        env={**os.environ, "NO_TORCH_COMPILE": "1", "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    for b in (1, 2):
        assert 0 < r[f"b{b}_tick_ms_p50"] <= r[f"b{b}_tick_ms_p99"], b
        assert r[f"b{b}_state_bytes"] > 0
    # Two slots hold twice one slot's streaming state; slot 0 re-injected during the run.
    assert 1.9 < r["b2_state_bytes"] / r["b1_state_bytes"] <= 2  # a few shared constants
    assert r["b2_reinject_ms_p50"] > 0 and "b1_reinject_ms_p50" not in r
    assert r["largest_realtime_batch"] in (0, 1, 2)
