"""EngineWorker: one thread owns the model; asyncio awaits it and never blocks on torch.

Every job runs on the same single thread (a ``ThreadPoolExecutor(max_workers=1)``), inside
``torch.inference_mode()``, so CUDA graphs, streaming state and the torch thread pool are
only ever touched from one place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from entropi.config import Config
from entropi.core.logs import get_logger

if TYPE_CHECKING:
    from entropi.engine.engine import CatchUpStats, Engine, FrameOut, PrimeStats

log = get_logger(__name__)
T = TypeVar("T")


async def run_in_model_thread(pool: ThreadPoolExecutor | None, owner: str,
                              fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on the model's one thread, inside ``torch.inference_mode()``."""
    if pool is None:
        raise RuntimeError(f"{owner} is not started (or already closed)")

    def job() -> T:
        import torch

        with torch.inference_mode():
            return fn(*args)

    return await asyncio.get_running_loop().run_in_executor(pool, job)


class EngineWorker:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._pool: ThreadPoolExecutor | None = None
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("EngineWorker.start() has not completed")
        return self._engine

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await run_in_model_thread(self._pool, "EngineWorker", fn, *args)

    async def start(self) -> Engine:
        """Load the engine on the worker thread (minutes for the 7B model)."""
        from entropi.engine.engine import load_engine

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="entropi-engine")
        try:
            self._engine = await self._run(load_engine, self.cfg)
        except BaseException:
            await self.close()
            raise
        return self._engine

    async def prime(self, prompt: str) -> PrimeStats:
        return await self._run(self.engine.prime, prompt)

    async def prime_reference(self, prompt: str) -> PrimeStats:
        return await self._run(self.engine.prime_reference, prompt)

    async def use_voice(self, path: Any) -> Any:
        """Switch the voice snapshot (``Engine.use_voice``) on the model thread, between calls."""
        return await self._run(self.engine.use_voice, path)

    async def step(self, pcm: np.ndarray) -> FrameOut:
        return await self._run(self.engine.step, pcm)

    async def catch_up(self, frames: list[np.ndarray]) -> CatchUpStats:
        """Step user frames the model did not hear into it (``Engine.catch_up``)."""
        return await self._run(self.engine.catch_up, frames)

    @property
    def catch_up_factor(self) -> float | None:
        """Catch-up time per audio time, measured at warm-up (None: not measured)."""
        return self.engine.catch_up_factor

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run any other engine work (memory stats, token counting) on the model thread."""
        return await self._run(fn, *args)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            # Let a running job finish on its own thread; don't block the event loop on it.
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown, True)
        log.info("engine_worker_closed")
