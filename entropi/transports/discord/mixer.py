"""Discord audio ↔ the controller's 80 ms frames, on a local clock.

In: py-cord hands every speaker's audio over as 48 kHz stereo s16 packets of 20 ms (3840 B),
from its receiver thread, and sends **nothing** while a person is silent. ``InputMixer``
turns each speaker's packets into 24 kHz mono (soxr), keeps a short bounded buffer per
speaker, and on each tick of the local 80 ms clock mixes what is there into one 1920-sample
frame (silence where nobody spoke): the conversation never waits for packets.

Out: ``OutputChunker`` takes the agent's 80 ms frames and serves py-cord's player thread
3840-byte reads (48 kHz stereo s16, 20 ms), silence when nothing is queued.

Both sides are bounded (the oldest audio is dropped and counted) and thread-safe: py-cord's
threads and the event loop only hold a lock for a few array operations.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

from entropi.audio.resample import ChunkResampler
from entropi.core.constants import FRAME_SIZE, SAMPLE_RATE

DISCORD_RATE = 48_000
PACKET_BYTES = 3_840  # 20 ms of 48 kHz stereo s16
PACKET_SAMPLES = 480  # 20 ms at 24 kHz
PACKETS_PER_FRAME = FRAME_SIZE // PACKET_SAMPLES  # 4
_TIMINGS = 1 << 16  # ring of per-frame timings kept for the benchmark


class Ring:
    """Fixed-size ring of float samples (timings for p99s); flat memory however long it runs."""

    def __init__(self, capacity: int = _TIMINGS) -> None:
        self._data = np.zeros(capacity, dtype=np.float64)
        self.count = 0

    def add(self, value: float) -> None:
        self._data[self.count % self._data.size] = value
        self.count += 1

    def values(self) -> np.ndarray:
        return self._data[:min(self.count, self._data.size)].copy()


@dataclass
class _Speaker:
    name: str
    rs: ChunkResampler
    buf: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    # (cumulative 24 kHz samples pushed after this packet, arrival time): for latency.
    arrivals: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=256))
    pushed: int = 0  # 24 kHz samples appended to buf, ever
    taken: int = 0  # 24 kHz samples mixed out of buf (or dropped), ever
    fresh: bool = False  # packets arrived since the last tick
    leaving: bool = False


def _new_resampler() -> ChunkResampler:
    return ChunkResampler(DISCORD_RATE, SAMPLE_RATE)


def packet_to_mono(pcm: bytes) -> np.ndarray:
    """48 kHz interleaved stereo s16 bytes → float32 mono (channel average)."""
    s = np.frombuffer(pcm, dtype="<i2")
    if s.size % 2:
        s = s[:-1]
    return s.reshape(-1, 2).astype(np.float32).mean(axis=1) / 32768.0


class InputMixer:
    """Per-speaker 48 kHz stereo packets in (any thread), one 24 kHz mono frame per tick out."""

    def __init__(self, max_buffer_frames: int = 4, speech_dbfs: float = -50.0) -> None:
        # A speaker may run this far ahead of the clock (a late burst) before the oldest
        # audio is dropped: latency stays bounded instead of growing with every burst.
        self.max_samples = max_buffer_frames * FRAME_SIZE
        self._speech_rms = 10 ** (speech_dbfs / 20)
        self._speakers: dict[Hashable, _Speaker] = {}
        self._lock = threading.Lock()
        self.packets = 0
        self.dropped_packets = 0  # 20 ms packets' worth of audio dropped for buffer overflow
        self.mix_ms = Ring()
        self.latency_ms = Ring()  # packet arrival → handed to the controller in a frame

    def push(self, user: Hashable, name: str, pcm: bytes, now: float) -> None:
        """One packet from py-cord's receiver thread; ``now`` on the local clock."""
        mono = packet_to_mono(pcm)
        with self._lock:
            sp = self._speakers.get(user)
            if sp is None or sp.leaving:
                sp = self._speakers[user] = _Speaker(name, _new_resampler())
            sp.name = name
            out = sp.rs.push(mono)
            self._append(sp, out, now)
            sp.fresh = True
            self.packets += 1

    def _append(self, sp: _Speaker, samples: np.ndarray, now: float) -> None:
        if samples.size:
            sp.buf = np.concatenate([sp.buf, samples])
            sp.pushed += samples.size
        sp.arrivals.append((sp.pushed, now))
        excess = sp.buf.size - self.max_samples
        if excess > 0:
            sp.buf = sp.buf[excess:]
            sp.taken += excess
            self.dropped_packets += -(-excess // PACKET_SAMPLES)

    def leave(self, user: Hashable) -> None:
        """The speaker left the channel: what is buffered still plays, then they are gone."""
        with self._lock:
            sp = self._speakers.get(user)
            if sp is not None:
                sp.leaving = True

    def tick(self, now: float) -> tuple[np.ndarray, list[str]]:
        """The frame for this tick of the local clock and the names heard in it."""
        t0 = time.perf_counter()
        mix = np.zeros(FRAME_SIZE, dtype=np.float32)
        names: list[str] = []
        with self._lock:
            for user, sp in list(self._speakers.items()):
                was_fresh, sp.fresh = sp.fresh, False
                if not was_fresh:
                    # No packets for a whole tick: the talk paused (Discord sends nothing).
                    # Flush the resampler's tail now rather than at the next word.
                    self._append(sp, sp.rs.push(np.zeros(0, np.float32), last=True),
                                 now)
                    sp.rs.clear()
                chunk = sp.buf[:FRAME_SIZE]
                sp.buf = sp.buf[chunk.size:]
                sp.taken += chunk.size
                self._record_latency(sp, now)
                if chunk.size:
                    mix[:chunk.size] += chunk
                    if float(np.sqrt(np.mean(chunk * chunk))) > self._speech_rms \
                            and sp.name not in names:
                        names.append(sp.name)
                if not sp.buf.size and (sp.leaving or not was_fresh):
                    del self._speakers[user]  # left, or silent: the next word starts clean
        peak = float(np.max(np.abs(mix)))
        if peak > 1.0:  # several loud speakers at once: scale the frame, never clip
            mix /= peak
        self.mix_ms.add((time.perf_counter() - t0) * 1e3)
        return mix, names

    def _record_latency(self, sp: _Speaker, now: float) -> None:
        while sp.arrivals and sp.arrivals[0][0] <= sp.taken:
            _, arrived = sp.arrivals.popleft()
            self.latency_ms.add(max(0.0, now - arrived) * 1e3)

    def present(self) -> int:
        with self._lock:
            return len(self._speakers)


class OutputChunker:
    """The agent's 80 ms frames in (event loop), 3840-byte 20 ms reads out (player thread)."""

    def __init__(self, capacity_frames: int = 8, prebuffer_frames: int = 1) -> None:
        self._rs = ChunkResampler(SAMPLE_RATE, DISCORD_RATE)
        self._buf = bytearray()
        self._cap = capacity_frames * PACKETS_PER_FRAME * PACKET_BYTES
        # Reads start (and restart after running dry) only once this much is queued: the
        # agent's frame lands some milliseconds into each 80 ms, the reads are every 20 ms.
        self._prebuffer = prebuffer_frames * PACKETS_PER_FRAME * PACKET_BYTES
        self._serving = False
        self._lock = threading.Lock()
        self._silence = bytes(PACKET_BYTES)
        self.frames = 0
        self.reads = 0
        self.empty_reads = 0  # 20 ms reads served as silence after audio had started
        self.dropped_bytes = 0
        self._played_any = False

    def write(self, frame: np.ndarray) -> None:
        up = self._rs.push(frame)
        s16 = (np.clip(up, -1.0, 1.0) * 32767.0).astype("<i2")
        data = np.repeat(s16, 2).tobytes()  # mono → interleaved stereo
        with self._lock:
            self._buf += data
            excess = len(self._buf) - self._cap
            if excess > 0:
                excess += -excess % 4  # whole stereo samples
                del self._buf[:excess]
                self.dropped_bytes += excess
            self.frames += 1

    def read(self) -> bytes:
        """Exactly 3840 bytes, always (py-cord stops playing on a short read)."""
        with self._lock:
            self.reads += 1
            if not self._serving and len(self._buf) >= self._prebuffer:
                self._serving = True
            if self._serving and len(self._buf) >= PACKET_BYTES:
                out = bytes(self._buf[:PACKET_BYTES])
                del self._buf[:PACKET_BYTES]
                self._played_any = True
                return out
            if self._serving:
                self._serving = False  # ran dry: prebuffer again before resuming
            if self._played_any:
                self.empty_reads += 1
            return self._silence

    def queued_bytes(self) -> int:
        with self._lock:
            return len(self._buf)
