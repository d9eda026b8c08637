"""Up to B remote callers at once (``runtime.max_conversations: B``), one slot each.

Every call is its own task running its own :class:`Session` (controller, compactor, memory,
clips) on a slot of the shared :class:`SlotPool`; the engine's ticker steps their frames
together. The server refuses caller B + 1 with kind 5 "busy". A call's slot and line are
freed only after its session has flushed memory. A call that crashes is logged with its
number and ends alone: the other calls, the server and the daemon go on. On SIGTERM every
live conversation is asked to stop; each flushes, then the daemon exits.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from entropi.conversation.controller import PersonaPlexController, State, WindowStats
from entropi.core.errors import ConfigError, InputError
from entropi.core.logs import get_logger, narrate
from entropi.service.callers import (
    call_record,
    next_call,
    refuse_voice,
    start_server,
    use_voice,
    watchdog,
)
from entropi.transports.websocket.server import ChatServer

if TYPE_CHECKING:
    from entropi.engine.slots import Slot, SlotPool
    from entropi.service.daemon import Daemon
    from entropi.transports.websocket.transport import WebSocketTransport

log = get_logger(__name__)


class Calls:
    """The live calls: their tasks, controllers and the daemon's status for them."""

    def __init__(self, daemon: Daemon, pool: SlotPool, server: ChatServer, client: Any,
                 clips: Any, deadline: float) -> None:
        self.daemon, self.pool, self.server = daemon, pool, server
        self.client, self.clips, self.deadline = client, clips, deadline
        self.voice_clips: dict[str, tuple[Any, float]] = {
            daemon.cfg.voice.prompt_file: (clips, deadline)}
        self.controllers: dict[int, PersonaPlexController] = {}
        self.transports: dict[int, WebSocketTransport] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.started = 0
        self.crashed = 0

    def idle(self) -> bool:
        return all(t.waiting_for_input for t in self.transports.values())

    def publish_state(self) -> None:
        self.daemon.set_state("waiting" if not self.transports else "serving",
                              port=self.server.port, conversations=self.started,
                              calls=len(self.transports), slots=self.pool.size)

    def start(self, call: WebSocketTransport, slot: Slot) -> None:
        self.started += 1
        number = self.started
        self.transports[number] = call
        task = asyncio.create_task(self._one(number, call, slot), name=f"call-{number}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        self.publish_state()

    def stop_all(self) -> None:
        for controller in self.controllers.values():
            controller.request_stop()

    def _on_window(self, number: int, call: WebSocketTransport):
        def on_window(w: WindowStats, state: State) -> None:
            self.daemon.publish("state", state=state.value, window=w.number, call=number)
            if state is State.LIVE and w.number == 1:
                call.go_live()  # primed: this caller gets the handshake now
        return on_window

    async def _one(self, number: int, call: WebSocketTransport, slot: Slot) -> None:
        daemon = self.daemon
        try:
            # The request's persona and voice (and, with per-user tokens, its user's memory).
            cfg = call.request.config(daemon.cfg)  # type: ignore[attr-defined]
            try:
                clips, deadline = await use_voice(self.pool, cfg, self.voice_clips, slot)
            except (InputError, ConfigError) as exc:
                await refuse_voice(self.server, call, cfg, exc)
                return
            session = daemon.session(cfg, slot, self.client, clips, deadline, call,
                                     self._on_window(number, call))
            self.controllers[number] = session.controller
            if daemon.stop_requested.is_set():
                session.controller.request_stop()
            log.info("call_slot", call=number, slot=slot.index, remote=call.remote)
            daemon.summary = await session.run(daemon.supervise)
            daemon.calls.append(call_record(call, slot=slot.index))
            log.info("conversation_over", conversation=number, reason=call.end_reason,
                     windows=daemon.summary.get("windows"), slot=slot.index)
            daemon.publish("call_ended", conversation=number, reason=call.end_reason)
        except Exception as exc:  # this call alone ends; the others talk on
            self.crashed += 1
            log.error("call_crashed", call=number, error=f"{type(exc).__name__}: {exc}",
                      exc_info=exc)
            with contextlib.suppress(Exception):
                await call.close()
        finally:
            self.controllers.pop(number, None)
            self.transports.pop(number, None)
            self.pool.release(slot)  # after the flush: the session has returned
            self.server.release(call)
            self.publish_state()


async def serve_many(daemon: Daemon, pool: SlotPool, client: Any, clips: Any,
                     deadline: float, server: Any = None) -> None:
    """``server``: where callers come from (default: the daemon's own aiohttp ChatServer; a
    cluster replica passes its ASGI one)."""
    server = await start_server(daemon, server)
    narrate(f"ready: open {server.url} to talk, up to {pool.size} callers at once")
    calls = Calls(daemon, pool, server, client, clips, deadline)
    daemon.notifier.ready(status=f"waiting for callers on port {server.port} "
                                 f"(up to {pool.size} at once)")
    pinger = asyncio.create_task(watchdog(daemon, calls.idle), name="watchdog-pinger")
    try:
        calls.publish_state()
        while not daemon.stop_requested.is_set():
            call = await next_call(server, daemon.stop_requested)
            if call is None:
                break
            slot = pool.acquire()
            if slot is None:  # the server counts the same lines: cannot happen, but say so
                call.refuse("busy: no free conversation slot")
                await call.close()
                server.release(call)
                continue
            calls.start(call, slot)
        calls.stop_all()
        if calls.tasks:
            await asyncio.gather(*calls.tasks, return_exceptions=True)
        if daemon.summary:
            sizes = pool.batch_sizes
            daemon.summary |= {
                "conversations": calls.started, "ticks": pool.ticks,
                "slots_per_tick_mean": round(sum(sizes) / len(sizes), 2) if sizes else None,
                "reinjections": pool.reinjections,
                "reinjections_overlapping": pool.reinjections_overlapping,
                "frames_behind_reinjection": pool.frames_behind_reinjection}
    finally:
        pinger.cancel()
        await server.stop()
