"""AudioIO: one frame source and one frame sink, each a WAV file or a sound device.

The device side is one PortAudio stream (duplex when both ends are devices) whose callback
thread only copies samples into / out of bounded queues; asyncio is woken with
``loop.call_soon_threadsafe``. The device input is the clock; WAV input is paced to real
time (frame ``k`` becomes available at ``(k + 1) × 80 ms``) unless ``audio.fast``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import numpy as np

from entropi.audio.queues import DropOldestQueue, JitterBuffer
from entropi.audio.resample import StreamResampler
from entropi.audio.stats import AudioStats
from entropi.audio.wav import ArraySource, WavStream, WavWriter, open_wav_source
from entropi.config import AudioSection
from entropi.core.constants import FRAME_SECONDS, FRAME_SIZE, SAMPLE_RATE
from entropi.core.errors import DeviceError, InputError
from entropi.core.logs import get_logger
from entropi.transports.devices import import_sounddevice, resolve_device

log = get_logger(__name__)

_CLOSE_FADE = np.linspace(1.0, 0.0, int(0.02 * SAMPLE_RATE), dtype=np.float32)  # 20 ms
_TIMING_CAPACITY = 1 << 16  # callback durations kept for the benchmark (~87 min of frames)


class AudioIO:
    """Frames in (``read_frame``) and out (``write_frame``) for the daemon; see module doc."""

    def __init__(self, cfg: AudioSection,
                 wav_in: WavStream | ArraySource | np.ndarray | None = None,
                 input_device: int | None = None, output_device: int | None = None) -> None:
        self.cfg = cfg
        # WAV input is read from disk frame by frame, never decoded whole.
        self._wav_in = ArraySource(wav_in) if isinstance(wav_in, np.ndarray) else wav_in
        self._input_device = input_device
        self._output_device = output_device
        self._stats = AudioStats()
        self._in_q = DropOldestQueue(cfg.queue_frames)
        self._jitter = JitterBuffer(cfg.queue_frames, cfg.jitter_frames)
        self._silence = np.zeros(FRAME_SIZE, dtype=np.float32)
        self._writer: WavWriter | None = None
        self._stream: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = asyncio.Event()
        self._wav_pos = 0
        self._t0 = 0.0
        self._played_any = False
        self._closed = False
        self._rs_in: StreamResampler | None = None
        self._rs_out: StreamResampler | None = None
        self._echo: Any = None  # entropi.audio.echo.EchoWorker on a duplex device stream
        self.device_rate = SAMPLE_RATE
        # Rings for `entropi bench audio`: time inside each callback, and from the callback
        # queueing a frame to read_frame handing it over on the event loop.
        self.callback_ms = np.zeros(_TIMING_CAPACITY, dtype=np.float64)
        self.pickup_ms = np.zeros(_TIMING_CAPACITY, dtype=np.float64)
        self._pickups = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def uses_device(self) -> bool:
        return self._input_device is not None or self._output_device is not None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()  # bound to the running loop
        if self.cfg.output == "wav":
            assert self.cfg.output_wav is not None  # guaranteed by AudioSection
            self._writer = WavWriter(self.cfg.output_wav)
        if self.uses_device:
            self._stream = self._open_stream()
            self._stream.start()
        self._t0 = self._loop.time()
        log.info("audio_started", input=self.cfg.input, output=self.cfg.output,
                 device_rate=self.device_rate)

    async def close(self) -> None:
        """Drain the speaker with a short fade, stop the stream, finalise the WAV."""
        if self._closed:
            return
        self._closed = True
        if self._stream is not None:
            if self._output_device is not None:
                self._jitter.draining = True
                self._jitter.queue.fade_last(_CLOSE_FADE)
                deadline = time.monotonic() + (len(self._jitter) + 3) * FRAME_SECONDS
                while len(self._jitter) and time.monotonic() < deadline:
                    await asyncio.sleep(FRAME_SECONDS / 2)
            stream, self._stream = self._stream, None
            # Pa_StopStream waits for buffers to play out: keep it off the event loop.
            await asyncio.to_thread(_stop_and_close, stream)
        if self._echo is not None:
            await asyncio.to_thread(self._echo.close)
        if self._writer is not None:
            self._writer.close()
        if self._wav_in is not None:
            self._wav_in.close()
        self._ready.set()  # a waiting read_frame returns None
        log.info("audio_closed", **vars(self.stats()))

    # ------------------------------------------------------------------ frames

    async def read_frame(self) -> np.ndarray | None:
        """The next (1920,) float32 input frame, or None when the input has ended."""
        if self._wav_in is not None:
            return await self._read_wav_frame()
        while True:
            item = self._in_q.get()
            if item is not None:
                frame, stamp = item
                age = time.perf_counter() - stamp
                if age > FRAME_SECONDS:
                    self._stats.late_frames += 1
                self.pickup_ms[self._pickups % _TIMING_CAPACITY] = age * 1000.0
                self._pickups += 1
                return frame
            if self._closed or self._input_device is None:
                return None
            # Cleared and awaited on the loop thread, where the callback's set() also runs.
            self._ready.clear()
            await self._ready.wait()

    def write_frame(self, pcm: np.ndarray) -> None:
        """Queue one (1920,) frame for output; never blocks (a full queue drops its oldest)."""
        frame = np.asarray(pcm, dtype=np.float32).reshape(-1)
        if frame.size != FRAME_SIZE:
            raise ValueError(f"write_frame needs {FRAME_SIZE} samples, got {frame.size}")
        if self._writer is not None:
            self._writer.write(frame)
            self._stats.frames_out += 1
        elif not self._closed:
            self._jitter.push(frame.copy())  # the caller may reuse its buffer

    def stats(self) -> AudioStats:
        s = self._stats
        s.dropped_in = self._in_q.dropped
        s.dropped_out = self._jitter.queue.dropped
        return AudioStats(**vars(s))

    def callback_durations_ms(self) -> np.ndarray:
        n = min(self._stats.callbacks, _TIMING_CAPACITY)
        return self.callback_ms[:n].copy()

    def pickup_latencies_ms(self) -> np.ndarray:
        return self.pickup_ms[:min(self._pickups, _TIMING_CAPACITY)].copy()

    async def _read_wav_frame(self) -> np.ndarray | None:
        assert self._wav_in is not None and self._loop is not None
        k = self._wav_pos
        if self._wav_in.position >= self._wav_in.total:
            return None
        if self.cfg.fast:
            await asyncio.sleep(0)  # let other tasks run even at full speed
        else:
            due = self._t0 + (k + 1) * FRAME_SECONDS
            now = self._loop.time()
            if due > now:
                await asyncio.sleep(due - now)
            elif now - due > FRAME_SECONDS:
                self._stats.late_frames += 1
        frame = np.zeros(FRAME_SIZE, dtype=np.float32)  # the last frame is zero-padded
        chunk = self._wav_in.read(FRAME_SIZE)
        frame[:chunk.size] = chunk
        self._wav_pos += 1
        self._stats.frames_in += 1
        return frame

    # ------------------------------------------------------------------ device

    def _open_stream(self) -> Any:
        sd = import_sounddevice()
        rate = self._pick_rate(sd)
        block = round(FRAME_SIZE * rate / SAMPLE_RATE)
        if rate != SAMPLE_RATE:
            self._rs_in = StreamResampler(rate, SAMPLE_RATE)
            self._rs_out = StreamResampler(SAMPLE_RATE, rate)
        self.device_rate = rate
        if self.cfg.cancels_echo and self._input_device is not None \
                and self._output_device is not None:
            self.enable_echo_cancellation(rate)
        common = dict(samplerate=rate, blocksize=block, dtype="float32", channels=1,
                      latency=self.cfg.latency)
        try:
            if self._input_device is not None and self._output_device is not None:
                return sd.Stream(device=(self._input_device, self._output_device),
                                 callback=self._duplex_callback, **common)
            if self._input_device is not None:
                return sd.InputStream(device=self._input_device,
                                      callback=self._input_callback, **common)
            return sd.OutputStream(device=self._output_device,
                                   callback=self._output_callback, **common)
        except sd.PortAudioError as exc:
            raise DeviceError(f"audio: cannot open the device stream ({exc}); try another "
                              "device or audio.latency: high (see `entropi devices`)") from None

    def _pick_rate(self, sd: Any) -> int:
        """24 kHz if every device takes it, else the devices' native rate (resampled here)."""
        try:
            if self._input_device is not None:
                sd.check_input_settings(self._input_device, samplerate=SAMPLE_RATE,
                                        channels=1, dtype="float32")
            if self._output_device is not None:
                sd.check_output_settings(self._output_device, samplerate=SAMPLE_RATE,
                                         channels=1, dtype="float32")
            return SAMPLE_RATE
        except sd.PortAudioError:
            dev = self._input_device if self._input_device is not None else self._output_device
            rate = int(sd.query_devices(dev)["default_samplerate"])
            if (FRAME_SIZE * rate) % SAMPLE_RATE:
                raise DeviceError(f"audio: device runs at {rate} Hz, which is not a multiple "
                                  "of 12.5 Hz; set it to 48000 or 24000 Hz") from None
            log.info("audio_resampling", device_rate=rate)
            return rate

    def enable_echo_cancellation(self, rate: int) -> None:
        """The microphone passes an echo-cancelling thread, the speaker's output as reference
        (only a duplex device stream has both ends)."""
        from entropi.audio.echo import EchoCanceller, EchoWorker

        self._echo = EchoWorker(EchoCanceller(rate), self._deliver)
        log.info("echo_cancellation", rate=rate)

    # The callbacks run on PortAudio's thread: copy, count, queue, wake; nothing else.

    def _duplex_callback(self, indata: np.ndarray, outdata: np.ndarray, frames: int,
                         time_info: Any, status: Any) -> None:
        started = time.perf_counter()
        self._count_status(status)
        if self._echo is not None:
            self._play(outdata)
            self._echo.push(indata[:, 0].copy(), outdata[:, 0].copy(), started)
        else:
            self._capture(indata, started)
            self._play(outdata)
        self._record_duration(started)

    def _input_callback(self, indata: np.ndarray, frames: int, time_info: Any,
                        status: Any) -> None:
        started = time.perf_counter()
        self._count_status(status)
        self._capture(indata, started)
        self._record_duration(started)

    def _output_callback(self, outdata: np.ndarray, frames: int, time_info: Any,
                         status: Any) -> None:
        started = time.perf_counter()
        self._count_status(status)
        self._play(outdata)
        self._record_duration(started)

    def _count_status(self, status: Any) -> None:
        self._stats.callbacks += 1
        if status:
            self._stats.xruns += 1
            if status.input_overflow:
                self._stats.overflows += 1

    def _capture(self, indata: np.ndarray, stamp: float) -> None:
        self._deliver(indata[:, 0].copy(), stamp)

    def _deliver(self, samples: np.ndarray, stamp: float) -> None:
        """A captured device block (owned by us) into the input queue; wakes the loop."""
        frame = self._rs_in.push(samples) if self._rs_in is not None else samples
        self._in_q.put(frame, stamp)
        self._stats.frames_in += 1
        loop = self._loop
        if loop is not None:
            # RuntimeError: the loop closed while the stream was still running.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._ready.set)

    def _play(self, outdata: np.ndarray) -> None:
        frame = self._jitter.pop()
        if frame is None:
            frame = self._silence
            if self._played_any and not self._closed:
                self._stats.underruns += 1
        else:
            self._played_any = True
        outdata[:, 0] = self._rs_out.push(frame) if self._rs_out is not None else frame
        self._stats.frames_out += 1

    def _record_duration(self, started: float) -> None:
        i = (self._stats.callbacks - 1) % _TIMING_CAPACITY
        self.callback_ms[i] = (time.perf_counter() - started) * 1000.0


def _stop_and_close(stream: Any) -> None:
    stream.stop()
    stream.close()


def open_audio(cfg: AudioSection) -> AudioIO:
    """Sound devices and WAV files for ``cfg`` (input WAV opened, devices resolved), not
    started. Problems surface here, before any model loads: InputError for a bad WAV,
    DeviceError for a device that does not exist (the message lists those that do).
    """
    wav_in = None
    input_device = output_device = None
    if cfg.output == "wav" and cfg.output_wav is not None and cfg.input_wav is not None and \
            cfg.output_wav.resolve() == cfg.input_wav.resolve():
        raise InputError(f"audio.output_wav: {cfg.output_wav} is also the input; "
                         "write to another file")
    if cfg.input != "wav":
        input_device = resolve_device(cfg.input_device, "input", "audio.input_device")
    if cfg.output == "device":
        output_device = resolve_device(cfg.output_device, "output", "audio.output_device")
    if cfg.input == "wav":  # opened last: nothing after it can fail and leak the file
        assert cfg.input_wav is not None
        wav_in = open_wav_source(cfg.input_wav)
    return AudioIO(cfg, wav_in, input_device, output_device)
