"""``entropi bench audio``: a duplex stream on the JACK dummy device, echoing every frame.

Measures the time spent inside the PortAudio callback (copy + queue + wake-up), the delay
from the callback queueing a frame to asyncio's ``read_frame`` returning it, and counts
xruns, drops, underruns and late frames. Starts ``jackd`` (dummy backend, 24 kHz, 1920-
sample periods) when no JACK server runs, and stops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from entropi.core.percentiles import percentile

HELP = "audio device I/O: callback latency, xruns and drops on the JACK dummy device"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=60.0, help="run length (default 60)")
    p.add_argument("--device", default="system",
                   help="device name substring or index (default 'system', the JACK device)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from entropi.transports.jack import JackDummy

    jack = JackDummy()
    started = jack.start()
    try:
        result = asyncio.run(_measure(args.device, args.seconds))
    finally:
        jack.stop()
    return result | {"jackd_started_by_bench": started}


async def _measure(device: str, seconds: float) -> dict[str, Any]:
    from entropi.config import AudioSection
    from entropi.core.constants import FRAME_RATE
    from entropi.transports.local import open_audio

    ref: str | int = int(device) if device.isdigit() else device
    audio = open_audio(AudioSection(input_device=ref, output_device=ref,
                                    echo_cancellation="off"))
    await audio.start()
    began = time.perf_counter()
    try:
        for _ in range(round(seconds * FRAME_RATE)):
            frame = await audio.read_frame()
            if frame is None:
                break
            audio.write_frame(frame)  # the daemon's shape: one frame out per frame in
    finally:
        elapsed = time.perf_counter() - began
        await audio.close()
    stats = audio.stats()
    cb = audio.callback_durations_ms()
    pickup = audio.pickup_latencies_ms()

    return {
        "device": device,
        "seconds": round(elapsed, 3),
        "callbacks": stats.callbacks,
        "callbacks_per_second": round(stats.callbacks / elapsed, 3) if elapsed else 0.0,
        "callback_ms_p50": percentile(cb, 50, 4),
        "callback_ms_p99": percentile(cb, 99, 4),
        "callback_ms_max": float(cb.max()) if cb.size else float("nan"),
        "pickup_ms_p50": percentile(pickup, 50, 4),
        "pickup_ms_p99": percentile(pickup, 99, 4),
        "xruns": stats.xruns,
        "overflows": stats.overflows,
        "underruns": stats.underruns,
        "late_frames": stats.late_frames,
        "dropped_frames": stats.dropped_in + stats.dropped_out,
        "frames_in": stats.frames_in,
        "frames_out": stats.frames_out,
    }
