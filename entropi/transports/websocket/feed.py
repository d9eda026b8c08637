"""The live view's event stream: the daemon publishes, each page listening gets a copy.

Every subscriber has a small bounded queue; a page that reads too slowly loses its oldest
events (counted), never the daemon's time or memory. The history a page gets on opening is
the current call's only (:meth:`LiveFeed.new_call`): a new caller never sees the words of
the one before.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

_QUEUE = 512
_RECENT = 200  # events a page that opens mid-conversation gets first
_KEEPALIVE_S = 15.0


class _Subscriber:
    def __init__(self, recent: deque[dict[str, Any]]) -> None:
        self.events: deque[dict[str, Any]] = deque(recent, maxlen=_QUEUE)
        self.wake = asyncio.Event()


class LiveFeed:
    def __init__(self) -> None:
        self._subscribers: set[_Subscriber] = set()
        self.recent: deque[dict[str, Any]] = deque(maxlen=_RECENT)
        self.dropped = 0

    def publish(self, kind: str, **data: Any) -> None:
        event = {"type": kind, "t": round(time.time(), 3), **data}
        self.recent.append(event)
        for sub in self._subscribers:
            if len(sub.events) == sub.events.maxlen:
                self.dropped += 1
            sub.events.append(event)
            sub.wake.set()

    def new_call(self, **data: Any) -> None:
        """A call begins: forget the last one's history, then tell open pages (``call_started``:
        the page clears its live view)."""
        self.recent.clear()
        self.publish("call_started", **data)

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """Yield events (the recent ones first) until the consumer stops iterating; a
        ``keepalive`` every 15 s of quiet."""
        sub = _Subscriber(self.recent)
        self._subscribers.add(sub)
        try:
            while True:
                while sub.events:
                    yield sub.events.popleft()
                sub.wake.clear()
                try:
                    await asyncio.wait_for(sub.wake.wait(), _KEEPALIVE_S)
                except TimeoutError:
                    yield {"type": "keepalive"}
        finally:
            self._subscribers.discard(sub)
