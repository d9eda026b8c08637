"""SlotPool: B conversations on one batched engine, each on a Slot that quacks like EngineWorker.

One thread owns the :class:`BatchedEngine` (a ``ThreadPoolExecutor(max_workers=1)``, as in
``worker.py``). A slot's ``step`` parks its frame and wakes the ticker; the ticker takes every
frame parked at that moment and steps them in one batched call (continuous batching: a frame
waits at most for the tick in flight). Primes, voice switches and catch-ups are jobs on the
same thread, run between two ticks, and touch only their own slot's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from entropi.config import Config
from entropi.core.constants import FRAME_SIZE
from entropi.core.errors import InputError
from entropi.core.logs import get_logger
from entropi.engine.worker import run_in_model_thread

if TYPE_CHECKING:
    from entropi.engine.batched import BatchedEngine
    from entropi.engine.engine import Engine, FrameOut, PrimeStats, VoiceSwitch

log = get_logger(__name__)
T = TypeVar("T")

_GATHER_TURNS = 8  # event-loop turns a tick waits for its neighbours (microseconds if idle)


class SlotEngine:
    """What a conversation reads from ``worker.engine``: the tokenizer, its own voice's
    frames and the shared engine's memory figures."""

    def __init__(self, batched: BatchedEngine, index: int) -> None:
        self._batched, self._index = batched, index
        self.tokenizer = batched.tokenizer
        self.models = batched.single.models

    @property
    def voice_frames(self) -> int:
        return self._batched.voice_frames[self._index]

    def memory_stats(self) -> dict[str, Any]:
        return self._batched.memory_stats()


class Slot:
    """One conversation's handle: ``step``, ``prime``, ``use_voice``, ``catch_up``, ``call``."""

    def __init__(self, pool: SlotPool, index: int) -> None:
        self.pool, self.index = pool, index
        self.engine = SlotEngine(pool.batched, index)

    async def step(self, pcm: np.ndarray) -> FrameOut:
        if pcm.shape != (FRAME_SIZE,):  # here, so one bad frame never fails a whole tick
            raise InputError(f"engine.step: expected {FRAME_SIZE} samples, got {pcm.shape}")
        return await self.pool.submit(self.index, pcm)

    async def prime(self, prompt: str) -> PrimeStats:
        return await self.pool.prime(self.index, prompt)

    async def use_voice(self, path: Any) -> VoiceSwitch:
        return await self.pool.run(self.pool.batched.use_voice, self.index, path)

    async def catch_up(self, frames: list[np.ndarray]) -> int:
        return await self.pool.run(self.pool.batched.catch_up, self.index, frames)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.pool.call(fn, *args)


class SlotPool:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.size = cfg.runtime.max_conversations
        self._pool: ThreadPoolExecutor | None = None
        self._batched: BatchedEngine | None = None
        self._free: list[int] = []
        self._slots: list[Slot] = []
        self._pending: dict[int, tuple[np.ndarray, asyncio.Future[FrameOut], float]] = {}
        self._wake = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self.ticks = 0
        self.batch_sizes: deque[int] = deque(maxlen=10_000)  # slots stepped per tick
        # Re-injections (primes) and the live frames of other slots that waited behind one.
        self._primes: deque[tuple[int, int, float, float]] = deque(maxlen=64)
        self._overlapping: set[int] = set()
        self.reinjections = 0
        self.frames_behind_reinjection = 0
        self._prime_turn = asyncio.Lock()
        self._ticking = False  # the ticker has taken frames and not yet handed them back
        self._tick_done: asyncio.Future[None] | None = None

    @property
    def batched(self) -> BatchedEngine:
        if self._batched is None:
            raise RuntimeError("SlotPool.start() has not completed")
        return self._batched

    @property
    def engine(self) -> Engine:
        """The single-stream engine (clips, voice checks); run work on it with ``call``."""
        return self.batched.single

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await run_in_model_thread(self._pool, "SlotPool", fn, *args)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Work on the single engine's own state (rendering clips, counting tokens)."""
        return await self.run(self.batched.on_single, fn, *args)

    async def prime(self, index: int, prompt: str) -> PrimeStats:
        """Re-inject slot ``index`` (a job between two ticks); its span is kept to count the
        other slots' frames that waited behind it."""
        self.reinjections += 1
        number = self.reinjections

        def timed() -> PrimeStats:
            started = time.perf_counter()
            try:
                return self.batched.prime(index, prompt)
            finally:
                self._primes.append((number, index, started, time.perf_counter()))

        # One re-injection between two ticks: when several slots re-inject at once (window
        # ends that coincide), live frames go between them instead of waiting for them all.
        async with self._prime_turn:
            stats = await self.run(timed)
            if self._ticking:  # a tick took the frames that waited: let it finish
                await self._next_tick()
            if self._pending or self._wake.is_set():  # frames that came meanwhile: one more
                await self._next_tick()
        return stats

    @property
    def reinjections_overlapping(self) -> int:
        """Re-injections that a live frame of another slot waited behind."""
        return len(self._overlapping)

    def _count_overlaps(self, batch: dict[int, float], tick_start: float) -> None:
        for slot, submitted in batch.items():
            hits = [n for n, i, t0, t1 in self._primes
                    if i != slot and t0 < tick_start and t1 > submitted]
            self.frames_behind_reinjection += bool(hits)
            self._overlapping.update(hits)

    async def start(self) -> Engine:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="entropi-engine")
        try:
            self._batched = await self.run(load_batched, self.cfg, self.size)
        except BaseException:
            await self.close()
            raise
        self._slots = [Slot(self, i) for i in range(self.size)]
        self._free = list(range(self.size))
        self._ticker = asyncio.create_task(self._tick_loop(), name="engine-ticker")
        return self.batched.single

    # ------------------------------------------------------------------ slots

    def acquire(self) -> Slot | None:
        """A free slot, or None when every one is in a conversation."""
        if not self._free:
            return None
        return self._slots[self._free.pop(0)]

    def release(self, slot: Slot) -> None:
        """The slot's conversation is flushed: the slot is free (primed again before use)."""
        pending = self._pending.pop(slot.index, None)
        if pending is not None and not pending[1].done():
            pending[1].cancel()
        self.batched.release(slot.index)
        if slot.index not in self._free:
            self._free.append(slot.index)

    @property
    def busy(self) -> int:
        return self.size - len(self._free)

    # ------------------------------------------------------------------ ticks

    def submit(self, index: int, pcm: np.ndarray) -> asyncio.Future[FrameOut]:
        if index in self._pending:
            raise RuntimeError(f"slot {index}: a frame is already waiting for its tick")
        future: asyncio.Future[FrameOut] = asyncio.get_running_loop().create_future()
        self._pending[index] = (pcm, future, time.perf_counter())
        self._wake.set()
        return future

    async def _gather(self, expected: set[int]) -> None:
        """Give the slots of the last tick a few loop turns to hand in their next frame:
        their controllers resume one after the other, and a tick taken at the first one's
        submit would step the slots one by one at the cost of a whole tick each."""
        for _ in range(_GATHER_TURNS):
            if expected <= self._pending.keys():
                return
            await asyncio.sleep(0)

    async def _tick_loop(self) -> None:
        last: set[int] = set()
        while True:
            await self._wake.wait()
            self._ticking = True
            try:
                await self._gather(last - set(self._free))
                self._wake.clear()
                batch, self._pending = self._pending, {}
                last = set(batch)
                await self._tick({i: item for i, item in batch.items() if not item[1].done()})
            finally:
                self._ticking = False
                self._tick_over()

    async def _tick(self, batch: dict[int, tuple[np.ndarray, asyncio.Future[FrameOut], float]]
                    ) -> None:
        if not batch:
            return
        tick_start = 0.0

        def tick(frames: dict[int, np.ndarray]) -> dict[int, FrameOut]:
            nonlocal tick_start
            tick_start = time.perf_counter()
            return self.batched.step(frames)

        try:
            outs = await self.run(tick, {i: pcm for i, (pcm, _, _) in batch.items()})
        except Exception as exc:  # torch failure: every frame of this tick gets it
            log.error("tick_failed", slots=sorted(batch), error=f"{type(exc).__name__}: {exc}")
            for _, future, _ in batch.values():
                if not future.done():
                    future.set_exception(exc)
            return
        self.ticks += 1
        self.batch_sizes.append(len(batch))
        self._count_overlaps({i: t for i, (_, _, t) in batch.items()}, tick_start)
        for i, (_, future, _) in batch.items():
            if not future.done():  # its caller may have given up meanwhile
                future.set_result(outs[i])

    def _tick_over(self) -> None:
        """Wake whoever waits for a tick boundary (a re-injection letting live frames by)."""
        done = self._tick_done
        self._tick_done = None
        if done is not None and not done.done():
            done.set_result(None)

    async def _next_tick(self) -> None:
        if self._tick_done is None:
            self._tick_done = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._tick_done)

    async def close(self) -> None:
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        self._tick_over()  # no tick comes any more: nobody may wait for one
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown, True)
        log.info("slot_pool_closed")


def load_batched(cfg: Config, slots: int) -> BatchedEngine:
    """Load the single engine, then its batch-``slots`` twin, and warm every slot up."""
    from entropi.engine.batched import BatchedEngine
    from entropi.engine.engine import load_engine

    batched = BatchedEngine(load_engine(cfg), slots)
    warm_ms = batched.warm_up()
    log.info("batched_engine_ready", warm_up_ms=round(warm_ms, 1),
             **batched.memory_stats())
    return batched
