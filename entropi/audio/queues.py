"""Bounded frame queues between the PortAudio callback thread and asyncio.

Both drop the *oldest* frame when full (fresh audio matters more than stale audio) and
count what they drop. A plain lock is enough: both sides hold it for a few list operations.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


class DropOldestQueue:
    """Fixed-capacity FIFO of frames (with the time each was queued)."""

    def __init__(self, capacity: int) -> None:
        self._items: deque[tuple[np.ndarray, float]] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, frame: np.ndarray, stamp: float = 0.0) -> None:
        with self._lock:
            if len(self._items) == self._items.maxlen:
                self.dropped += 1  # deque(maxlen) evicts the oldest on append
            self._items.append((frame, stamp))

    def get(self) -> tuple[np.ndarray, float] | None:
        with self._lock:
            return self._items.popleft() if self._items else None

    def fade_last(self, ramp: np.ndarray) -> bool:
        """Multiply the tail of the newest frame by ``ramp`` (a fade-out before stopping)."""
        with self._lock:
            if not self._items:
                return False
            frame, stamp = self._items[-1]
            frame = frame.copy()
            frame[-ramp.size:] *= ramp
            self._items[-1] = (frame, stamp)
            return True

    def __len__(self) -> int:
        return len(self._items)


class JitterBuffer:
    """Output side: holds ``prime`` frames before playing so small hiccups don't starve it.

    ``pop`` never waits: it returns a frame or None (the caller plays silence). After
    running dry it primes again, rebuilding the cushion instead of stuttering frame by frame.
    """

    def __init__(self, capacity: int, prime: int) -> None:
        self.queue = DropOldestQueue(capacity)
        self.prime = min(prime, capacity)
        self._priming = True
        self.draining = False  # while closing, play what is left without priming

    def push(self, frame: np.ndarray) -> None:
        self.queue.put(frame)

    def pop(self) -> np.ndarray | None:
        if self._priming and (len(self.queue) >= self.prime or self.draining):
            self._priming = False
        if not self._priming:
            item = self.queue.get()
            if item is not None:
                return item[0]
            self._priming = not self.draining
        return None

    def __len__(self) -> int:
        return len(self.queue)
