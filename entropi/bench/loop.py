"""``entropi bench loop``: the whole daemon in fast WAV mode for N windows.

Reports orchestration overhead per frame (controller time minus model time), handover
(window end → next LIVE frame) and dead-air frames.
"""

from __future__ import annotations

import argparse
from typing import Any

HELP = "run the daemon for N windows on WAV input (fast) and report loop overhead and handovers"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default="config.demo.yaml", metavar="PATH")
    p.add_argument("--windows", type=int, default=20, metavar="N")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio
    import tempfile
    from pathlib import Path

    import numpy as np

    from entropi.audio import read_wav, write_wav
    from entropi.config import load_config
    from entropi.constants import SAMPLE_RATE
    from entropi.daemon import Daemon, RunOptions

    cfg = load_config(args.config)
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
        daemon = Daemon(cfg, RunOptions(max_windows=args.windows))
        asyncio.run(daemon.serve())
    s = daemon.summary
    keys = ("windows", "frames", "dead_air_frames", "overhead_ms_p50", "overhead_ms_p99",
            "handover_ms_p50", "handover_ms_p99", "fallbacks", "compaction_ms_p50",
            "restart_ms_p50", "wall_seconds", "audio_seconds")
    return {k: s[k] for k in keys} | {"config": str(args.config),
                                      "llm_backend": cfg.secondary_model.backend}
