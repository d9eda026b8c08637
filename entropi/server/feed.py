"""The live view's event stream: the daemon publishes, each page listening gets a copy.

Every subscriber has a small bounded queue; a page that reads too slowly loses its oldest
events (counted), never the daemon's time or memory.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

_QUEUE = 512
_RECENT = 200  # events a page that opens mid-conversation gets first


class LiveFeed:
    def __init__(self) -> None:
        self._subscribers: set[deque[dict[str, Any]]] = set()
        self._wake: set[asyncio.Event] = set()
        self.recent: deque[dict[str, Any]] = deque(maxlen=_RECENT)
        self.dropped = 0

    def publish(self, kind: str, **data: Any) -> None:
        event = {"type": kind, "t": round(time.time(), 3), **data}
        self.recent.append(event)
        for q in self._subscribers:
            if len(q) == q.maxlen:
                self.dropped += 1
            q.append(event)
        for ev in self._wake:
            ev.set()

    async def subscribe(self):
        """Yield events (the recent ones first) until the consumer stops iterating."""
        q: deque[dict[str, Any]] = deque(self.recent, maxlen=_QUEUE)
        wake = asyncio.Event()
        self._subscribers.add(q)
        self._wake.add(wake)
        try:
            while True:
                while q:
                    yield q.popleft()
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), 15.0)
                except TimeoutError:
                    yield {"type": "keepalive"}
        finally:
            self._subscribers.discard(q)
            self._wake.discard(wake)
