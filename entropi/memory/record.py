"""What the controller hands to memory at the end of every window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class WindowRecord:
    window: int
    started_at: datetime
    ended_at: datetime
    transcript: str
    prompt: str
    directive: dict[str, Any] | None = None
    people: tuple[str, ...] = ()  # who talked (opted-in Discord users), for the roster
