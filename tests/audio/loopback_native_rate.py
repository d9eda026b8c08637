"""Run by test_device.py in its own process, against its own 48 kHz JACK server.

The device cannot run at 24 kHz, so AudioIO must open it at 48 kHz (3840-sample blocks) and
resample at the edge. Prints one JSON line: device rate, stats and the markers seen.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

import numpy as np

from entropi.config import AudioSection
from entropi.core.constants import FRAME_SIZE
from entropi.transports.jack import JackDummy, jack_connect, jack_ports
from entropi.transports.local import open_audio


async def _loop() -> dict[str, object]:
    inputs, outputs = set(jack_ports("input")), set(jack_ports("output"))
    audio = open_audio(AudioSection(input_device="system", output_device="system",
                                    echo_cancellation="off", queue_frames=32))
    await audio.start()
    [ours_in] = [p for p in jack_ports("input") if p not in inputs]
    [ours_out] = [p for p in jack_ports("output") if p not in outputs]
    jack_connect(ours_out, ours_in)
    received = []
    for k in range(1, 31):
        received.append(await audio.read_frame())
        audio.write_frame(np.full(FRAME_SIZE, k / 256, dtype=np.float32))
    for _ in range(15):
        received.append(await audio.read_frame())
    await audio.close()
    # The resampler smooths each step between markers over a few samples: the median of a
    # frame is its marker.
    medians = [round(float(np.median(f)) * 256) for f in received if f is not None]
    return {"device_rate": audio.device_rate, "stats": asdict(audio.stats()),
            "markers": [m for m in medians if m]}


def main() -> None:
    jack = JackDummy(rate=48_000, period=3_840)
    jack.start()
    try:
        print(json.dumps(asyncio.run(_loop())))
    finally:
        jack.stop()


if __name__ == "__main__":
    main()
