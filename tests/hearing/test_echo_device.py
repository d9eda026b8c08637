"""Echo cancellation on a real duplex stream: the JACK dummy device with the stream's own
output wired to its input (the microphone hears exactly what the speaker plays, one period
later). With cancellation on, the agent's voice does not come back as input."""

from __future__ import annotations

import numpy as np
import pytest

from entropi.audio.levels import rms_dbfs
from entropi.audio.signals import at_level, espeak
from entropi.config import AudioSection
from entropi.core.constants import FRAME_SIZE
from entropi.transports.jack import JackDummy, jack_connect, jack_ports
from entropi.transports.local import open_audio
from tests.audio.conftest import jack  # noqa: F401  (the session's JACK dummy server)

pytestmark = pytest.mark.timeout(60)


async def test_looped_back_agent_voice_is_cancelled(jack: JackDummy) -> None:  # noqa: F811
    agent = at_level(espeak("Hello, I am Ada. How was your day? Tell me about the garden."),
                     -20.0)
    frames = agent.size // FRAME_SIZE
    inputs, outputs = set(jack_ports("input")), set(jack_ports("output"))
    audio = open_audio(AudioSection(input_device="system", output_device="system",
                                    echo_cancellation="on", queue_frames=32))
    await audio.start()
    assert audio._echo is not None
    received = []
    try:
        ours_in = [p for p in jack_ports("input") if p not in inputs]
        ours_out = [p for p in jack_ports("output") if p not in outputs]
        jack_connect(ours_out[0], ours_in[0])
        for k in range(frames + 4):
            frame = await audio.read_frame()
            assert frame is not None and frame.shape == (FRAME_SIZE,)
            received.append(frame)
            if k < frames:
                audio.write_frame(agent[k * FRAME_SIZE:(k + 1) * FRAME_SIZE])
    finally:
        await audio.close()
    played = rms_dbfs(agent)
    # After the canceller's first second, what comes back is far below what was played.
    back = rms_dbfs(np.concatenate(received[13:]))
    assert played > -25 and back < played - 25, (played, back)
