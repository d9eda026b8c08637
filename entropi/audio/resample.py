"""Band-limited resampling (Kaiser-windowed sinc, polyphase) in plain numpy.

sphn.resample pads and delays its output (checked: 16 kHz → 24 kHz gives 24576 samples for
one second and a 168-sample shift), which would misalign WAV round trips, so entropi keeps
its own: output sample ``n`` lies exactly at input time ``n * src / dst``.
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np

_HALF_TAPS = 16  # taps each side of the kernel centre (scaled up when downsampling)
_KAISER_BETA = 8.0
_CHUNK = 32_768  # output samples per vectorised step; bounds memory to ~chunk × taps floats


@lru_cache(maxsize=16)
def _filter_bank(up: int, down: int) -> tuple[np.ndarray, np.ndarray]:
    """Kernel table [phase, tap] for output positions ``k / up`` past an input sample."""
    # Downsampling lowers the cut-off (and widens the kernel) to keep aliasing out.
    cutoff = min(1.0, up / down)
    half = int(np.ceil(_HALF_TAPS / cutoff))
    offsets = np.arange(-half + 1, half + 1)
    frac = np.arange(up)[:, None] / up
    dist = frac - offsets[None, :]
    ratio = np.clip(dist / (half + 1), -1.0, 1.0)
    window = np.i0(_KAISER_BETA * np.sqrt(1.0 - ratio * ratio)) / np.i0(_KAISER_BETA)
    return (cutoff * np.sinc(cutoff * dist) * window).astype(np.float32), offsets


def resample(pcm: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample a 1-D float signal; the output has ``round(len * dst / src)`` samples."""
    pcm = np.asarray(pcm, dtype=np.float32)
    if src_rate == dst_rate or pcm.size == 0:
        return pcm.copy()
    g = gcd(src_rate, dst_rate)
    up, down = dst_rate // g, src_rate // g
    bank, offsets = _filter_bank(up, down)
    half = -int(offsets[0]) + 1
    out_len = round(pcm.size * dst_rate / src_rate)
    padded = np.concatenate([np.zeros(half, np.float32), pcm, np.zeros(half + 1, np.float32)])
    out = np.empty(out_len, dtype=np.float32)
    for start in range(0, out_len, _CHUNK):
        n = np.arange(start, min(start + _CHUNK, out_len), dtype=np.int64)
        base, phase = np.divmod(n * down, up)
        taps = padded[base[:, None] + offsets[None, :] + half]
        out[start:start + n.size] = np.einsum("ij,ij->i", taps, bank[phase])
    return out


class StreamResampler:
    """Block-by-block resampling for a device that cannot run at 24 kHz.

    The output lags the input by a fixed ``half + 1`` input samples (under 1 ms) so each block
    needs no look-ahead: a block of ``n`` input samples yields exactly ``n * dst / src``
    output samples whenever that is a whole number (device block sizes are chosen so).
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        g = gcd(src_rate, dst_rate)
        self.up, self.down = dst_rate // g, src_rate // g
        self._bank, self._offsets = _filter_bank(self.up, self.down)
        self._delay = -int(self._offsets[0]) + 2  # half + 1
        history = self._delay + int(self._offsets[-1])
        self._buf = np.zeros(history, dtype=np.float32)
        self._buf_start = -history  # absolute input index of _buf[0]
        self._in_total = 0
        self._out_total = 0

    def push(self, block: np.ndarray) -> np.ndarray:
        self._buf = np.concatenate([self._buf, np.asarray(block, dtype=np.float32)])
        self._in_total += len(block)
        end = -(-self._in_total * self.up // self.down)  # ceil: outputs whose inputs exist
        n = np.arange(self._out_total, end, dtype=np.int64)
        base, phase = np.divmod(n * self.down, self.up)
        idx = base[:, None] - self._delay + self._offsets[None, :] - self._buf_start
        out = np.einsum("ij,ij->i", self._buf[idx], self._bank[phase]).astype(np.float32)
        self._out_total = end
        keep_from = end * self.down // self.up - self._delay + int(self._offsets[0])
        drop = max(0, keep_from - self._buf_start)
        self._buf = self._buf[drop:]
        self._buf_start += drop
        return out
