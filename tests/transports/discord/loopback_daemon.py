"""``entropi`` with py-cord's voice client replaced at its network boundary (tests only).

Everything runs as in production (CLI, daemon, controller, DiscordTransport, EntropiSink,
AgentSource, py-cord's own AudioPlayer thread and opus codec) except what would need
Discord's servers: login/gateway and the voice UDP socket. Instead, scripted speakers'
espeak-ng audio is opus-encoded, "sent", decoded and written into the sink from a
receiver thread at 20 ms pace, and the player's packets are opus-encoded and collected.

Usage: python loopback_daemon.py ENTROPI-ARGS…  (env LOOPBACK_SCRIPT: JSON list of
{"id", "name", "wav", "at"}; LOOPBACK_OUT: where to write what was sent)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from pathlib import Path

import discord
from discord.player import AudioPlayer
from discord.voice.packets import FakePacket, VoiceData

import entropi.transports.discord as entropi_discord
from entropi.audio.wav import read_wav
from entropi.transports.discord.simulate import SimMember, to_packets


class _WS:
    async def speak(self, state) -> None:
        pass


class LoopbackVoiceClient:
    """What py-cord's AudioPlayer needs of a VoiceClient; packets stop here, not on UDP."""

    timeout = 5.0

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.ws = _WS()
        self.client = type("C", (), {"loop": loop})()
        self.encoder = discord.opus.Encoder()
        self.sent: list[int] = []  # opus packet sizes
        self.pcm_reads: list[int] = []

    def is_connected(self) -> bool:
        return True

    def wait_until_connected(self, timeout: float | None = None) -> bool:
        return True

    def send_audio_packet(self, data: bytes, *, encode: bool = True) -> None:
        if not encode:  # the player's own opus silence frames when it stops
            return
        self.pcm_reads.append(len(data))  # one AgentSource.read()
        self.sent.append(len(self.encoder.encode(data, self.encoder.SAMPLES_PER_FRAME)))


class LoopbackLink:
    def __init__(self, transport) -> None:
        self.transport = transport
        self._stop = threading.Event()

    async def start(self, sink, source) -> None:
        self.vc = LoopbackVoiceClient(asyncio.get_running_loop())
        self.player = AudioPlayer(source, self.vc)
        self.player.start()
        script = json.loads(os.environ["LOOPBACK_SCRIPT"])
        self.receiver = threading.Thread(target=self._receive, args=(sink, script), daemon=True)
        self.receiver.start()

    def _receive(self, sink, script) -> None:
        """py-cord's packet router: decoded packets into the sink, 20 ms apart, per speaker."""
        t0 = time.monotonic()
        decoder = discord.opus.Decoder()
        encoder = discord.opus.Encoder()
        for turn in script:
            member = SimMember(turn["id"], turn["name"])
            for i, pcm in enumerate(to_packets(read_wav(turn["wav"]) * 0.6)):
                due = t0 + turn["at"] + i * 0.02
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
                wire = encoder.encode(pcm, encoder.SAMPLES_PER_FRAME)  # what crosses UDP
                data = VoiceData(FakePacket(member.id, i, i * 960), member,
                                 pcm=decoder.decode(wire))
                sink.write(data, data.source)

    async def close(self) -> None:
        self._stop.set()
        self.player.stop()
        self.player.join(2)
        Path(os.environ["LOOPBACK_OUT"]).write_text(json.dumps(
            {"reads": sorted(set(self.vc.pcm_reads)), "packets": len(self.vc.sent),
             "opus_bytes": sum(self.vc.sent)}))

    def status(self) -> dict:
        return {"channel": "loopback", "connected": True, "present": ["Ann", "Bob"],
                "rejoins": 0}


def main() -> int:
    entropi_discord.make_link = lambda cfg, token, commands, transport: LoopbackLink(transport)
    from entropi.cli import main as cli

    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
