"""The PersonaPlex engine: the only package that imports torch and moshi.

The daemon uses :func:`load_engine` / :class:`Engine` directly or, from asyncio, through
:class:`EngineWorker` (one thread owns the model). Heavy imports happen on first attribute
access so ``import entropi.engine`` stays cheap for command modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from entropi.engine.engine import Engine, FrameOut, PrimeStats, load_engine
    from entropi.engine.slots import SlotPool
    from entropi.engine.worker import EngineWorker

__all__ = ["Engine", "EngineWorker", "FrameOut", "PrimeStats", "SlotPool", "load_engine"]


def __getattr__(name: str) -> Any:
    if name == "EngineWorker":
        from entropi.engine.worker import EngineWorker

        return EngineWorker
    if name == "SlotPool":
        from entropi.engine.slots import SlotPool

        return SlotPool
    if name in ("Engine", "FrameOut", "PrimeStats", "load_engine"):
        from entropi.engine import engine

        return getattr(engine, name)
    raise AttributeError(name)
