"""``entropi bench loop``: the whole daemon in fast WAV mode for N windows.

Reports orchestration overhead per frame (controller time minus model time), handover
(window end → next LIVE frame), dead-air frames (fast mode: on the simulated 80 ms clock) and
resident memory at each window start, with its slope (MB per 100 windows) after window 2.

``--catch-up-compare`` runs the same input twice in one invocation, ``window.catch_up`` off
then on, and reports both (the loop overhead p99 with and without catch-up, side by side).
"""

from __future__ import annotations

import argparse
from typing import Any

HELP = "run the daemon for N windows on WAV input (fast) and report loop overhead and handovers"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default="config.demo.yaml", metavar="PATH")
    p.add_argument("--windows", type=int, default=20, metavar="N")
    p.add_argument("--catch-up-compare", action="store_true",
                   help="run twice, window.catch_up off then on, and report both")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from entropi.config import load_config

    cfg = load_config(args.config)
    if not getattr(args, "catch_up_compare", False):
        return _run_once(cfg, args)
    runs = {}
    for mode in ("off", "on"):
        window = cfg.window.model_copy(update={"catch_up": mode})
        runs[mode] = _run_once(cfg.model_copy(update={"window": window}), args)
    p99 = [runs[m]["overhead_ms_p99"] for m in ("off", "on")]
    delta = round(p99[1] - p99[0], 4) if None not in p99 else None
    return {"catch_up_off": runs["off"], "catch_up_on": runs["on"],
            "overhead_ms_p99_on_minus_off": delta}


def _run_once(cfg: Any, args: argparse.Namespace) -> dict[str, Any]:
    import asyncio
    import tempfile
    from pathlib import Path

    import numpy as np

    from entropi.audio.wav import read_wav, write_wav
    from entropi.conversation.controller import State
    from entropi.core.constants import SAMPLE_RATE
    from entropi.service.daemon import Daemon, RunOptions

    class _Measured(Daemon):
        """The daemon, noting resident memory as each window goes live."""

        def __init__(self, *a: Any) -> None:
            super().__init__(*a)
            self.rss_mb: list[float] = []

        def _on_window(self, w: Any, state: State) -> None:
            super()._on_window(w, state)
            if state is State.LIVE:
                self.rss_mb.append(_rss_mb())

    with tempfile.TemporaryDirectory() as tmp:
        audio = {"output": "wav", "output_wav": Path(tmp) / "out.wav"}
        if cfg.audio.input == "wav" and cfg.audio.input_wav is not None:
            # Tile the input so N windows never run out of "microphone".
            pcm = read_wav(cfg.audio.input_wav)
            need = int(args.windows * (cfg.window.max_seconds + 4) * SAMPLE_RATE)
            looped = Path(tmp) / "in.wav"
            write_wav(looped, np.tile(pcm, need // len(pcm) + 1))
            audio |= {"input_wav": looped, "fast": True}
        cfg = cfg.model_copy(update={"audio": cfg.audio.model_copy(update=audio)})
        daemon = _Measured(cfg, RunOptions(max_windows=args.windows))
        asyncio.run(daemon.serve())
    s = daemon.summary
    keys = ("windows", "frames", "dead_air_frames", "loop_dead_air_frames", "overhead_ms_p50",
            "overhead_ms_p99", "handover_ms_p50", "handover_ms_p99", "fallbacks",
            "compaction_ms_p50", "restart_ms_p50", "catch_up", "catch_up_frames",
            "catch_up_ms_p50", "catch_up_ms_p99", "wall_seconds", "audio_seconds")
    rss = daemon.rss_mb
    return {k: s[k] for k in keys} | {"config": str(args.config),
                                      "llm_backend": cfg.secondary_model.backend,
                                      "rss_mb_window_2": rss[1] if len(rss) > 1 else None,
                                      "rss_mb_last_window": rss[-1] if rss else None,
                                      "rss_mb_per_100_windows": _slope(rss[1:]) * 100}


def _rss_mb() -> float:
    from pathlib import Path

    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _slope(values: list[float]) -> float:
    """Least-squares growth per window (0 with fewer than 3 points: no trend to see)."""
    import numpy as np

    if len(values) < 3:
        return 0.0
    return round(float(np.polyfit(np.arange(len(values)), values, 1)[0]), 3)
