"""A stand-in for the ``sounddevice`` module, put first on PYTHONPATH for the unmodified
``python -m moshi.client``: the "microphone" plays a WAV at real-time pace and what the
client decodes is recorded (sphn's reader is wrapped for that).

Environment: FAKE_SD_WAV (input), FAKE_SD_SECONDS (how much of it), FAKE_SD_START (a file
whose appearance starts the microphone), FAKE_SD_OUT (a JSON file of counters, rewritten
every 0.2 s, and ``<FAKE_SD_OUT>.wav`` with the decoded playback at the end).
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
import wave
from pathlib import Path

import numpy as np
import sphn

FRAME = 1920
_counts = {"frames_sent": 0, "pages_received": 0, "samples_received": 0, "mic_done": False}
_played: list[np.ndarray] = []
_lock = threading.Lock()


class PortAudioError(Exception):
    pass


def _read_wav(path: str) -> np.ndarray:
    with wave.open(path) as w:
        assert w.getframerate() == 24000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


class _CountingReader:
    def __init__(self, rate: int) -> None:
        self._r = _OrigReader(rate)

    def append_bytes(self, data: bytes) -> np.ndarray:
        pcm = self._r.append_bytes(data)
        with _lock:
            _counts["pages_received"] += 1
            _counts["samples_received"] += int(pcm.size)
            _played.append(np.asarray(pcm, np.float32).copy())
        return pcm


_OrigReader = sphn.OpusStreamReader
sphn.OpusStreamReader = _CountingReader


def _dump() -> None:
    out = os.environ.get("FAKE_SD_OUT")
    if not out:
        return
    with _lock:
        data = dict(_counts)
    tmp = Path(out + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(out)


@atexit.register
def _dump_playback() -> None:
    out = os.environ.get("FAKE_SD_OUT")
    if not out:
        return
    _dump()
    with _lock:
        pcm = np.concatenate(_played) if _played else np.zeros(0, np.float32)
    with wave.open(out + ".wav", "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(24000)
        w.writeframes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())


class _Stream:
    def __init__(self, samplerate=24000, channels=1, blocksize=FRAME, callback=None, **kw):
        assert blocksize == FRAME and channels == 1
        self.callback = callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()

    close = stop


class InputStream(_Stream):
    def _run(self) -> None:
        start = os.environ.get("FAKE_SD_START")
        while start and not Path(start).exists() and not self._stop.is_set():
            time.sleep(0.05)
        pcm = _read_wav(os.environ["FAKE_SD_WAV"])
        n = int(float(os.environ.get("FAKE_SD_SECONDS", "1e9")) * 24000) // FRAME
        n = min(n, pcm.size // FRAME)
        t0 = time.monotonic()
        for k in range(n):
            if self._stop.is_set():
                return
            self.callback(pcm[k * FRAME:(k + 1) * FRAME].reshape(-1, 1).copy(), FRAME, None,
                          None)
            with _lock:
                _counts["frames_sent"] += 1
            delay = t0 + (k + 1) * 0.08 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        with _lock:
            _counts["mic_done"] = True


class OutputStream(_Stream):
    def _run(self) -> None:
        buf = np.zeros((FRAME, 1), np.float32)
        last = 0.0
        while not self._stop.is_set():
            self.callback(buf, FRAME, None, None)  # drains the client's queue
            if time.monotonic() - last > 0.2:
                _dump()
                last = time.monotonic()
            time.sleep(0.02)


def query_devices(*a, **k):
    return []
