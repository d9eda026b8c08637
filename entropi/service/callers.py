"""The daemon's life with remote callers: wait, converse, flush, wait for the next one.

Each call gets a fresh conversation (its own compactor, memory session and controller) on
the one loaded engine and LLM. The handshake goes out only once the persona is primed. While
nobody is connected, or while a connected caller sends nothing, a timer keeps systemd's
watchdog fed; a controller stuck with audio waiting for it still starves the watchdog.

A caller's ``voice_prompt`` switches the engine's voice snapshot before priming (the engine
keeps a few recent ones, so a returning voice costs nothing); a call without it gets the
configured voice back. The thinking clips follow the voice: that voice's rendered clips when
``entropi cache-clips --voice NAME`` made current ones, else the bundled recorded clips (never
rendered while a caller waits: that takes as long as speaking every line).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from entropi.core.errors import ConfigError, InputError
from entropi.core.logs import get_logger, narrate
from entropi.transports.websocket.feed import LiveFeed
from entropi.transports.websocket.server import ChatServer

if TYPE_CHECKING:
    from entropi.service.daemon import Daemon
    from entropi.transports.websocket.transport import WebSocketTransport

log = get_logger(__name__)

_PING_SECONDS = 1.0


async def start_server(daemon: Daemon, server: Any = None) -> Any:
    """Start where callers come from: ``server`` (a cluster replica's ASGI line) or the
    daemon's own aiohttp :class:`ChatServer`; the daemon's live feed is that server's."""
    if server is None:
        daemon.feed = LiveFeed()
        server = ChatServer(daemon.cfg, daemon.feed, status=daemon.live_status,
                            voice_dirs=daemon.opts.voice_dirs)
    else:
        daemon.feed = server.feed
    await server.start()
    return server


async def refuse_voice(server: Any, call: WebSocketTransport, cfg: Any, exc: Exception) -> None:
    """A caller's voice_prompt could not be used: kind 5 with the reason, then close."""
    server.line.refused += 1
    log.warning("call_refused", remote=call.remote, reason=str(exc))
    # Name the voice as the caller did, not by its path on this machine.
    call.refuse("voice_prompt: " + str(exc).replace(str(cfg.voice.prompt_path),
                                                    repr(cfg.voice.prompt_file)))
    await call.close()


def call_record(call: WebSocketTransport, **extra: Any) -> dict[str, Any]:
    """One finished call's latency samples and problems, for the benches and the summary."""
    return {"added_ms": list(call.added_ms), "wait_ms": list(call.wait_ms),
            "send_ms": list(call.send_ms), "step_ms": list(call.step_ms),
            "dropped_in": call.stats().dropped_in, **extra, **call.counts}


async def serve_callers(daemon: Daemon, worker: Any, client: Any, clips: Any,
                        deadline: float, server: Any = None) -> None:
    """Take calls from ``server`` (default: the daemon's own aiohttp :class:`ChatServer`; a
    cluster replica passes its ASGI one) until the daemon is asked to stop."""
    cfg = daemon.cfg
    server = await start_server(daemon, server)
    narrate(f"ready: open {server.url} to talk (or connect moshi's client to port {server.port})")
    daemon.notifier.ready(status=f"waiting for a caller on port {server.port}")
    call: WebSocketTransport | None = None

    def idle() -> bool:
        return call is None or call.waiting_for_input

    pinger = asyncio.create_task(watchdog(daemon, idle), name="watchdog-pinger")
    conversations = 0
    voice_clips: dict[str, tuple[Any, float]] = {cfg.voice.prompt_file: (clips, deadline)}
    try:
        while not daemon.stop_requested.is_set():
            daemon.set_state("waiting", port=server.port, conversations=conversations)
            call = await next_call(server, daemon.stop_requested)
            if call is None:
                break
            call_cfg = call.request.config(cfg)
            try:
                call_clips, call_deadline = await use_voice(worker, call_cfg, voice_clips)
            except (InputError, ConfigError) as exc:
                await refuse_voice(server, call, call_cfg, exc)
                server.release(call)
                call = None
                continue
            conversations += 1
            daemon.feed.new_call(conversation=conversations, voice=call_cfg.voice.prompt_file)
            daemon.set_state("priming", conversation=conversations, remote=call.remote,
                             window=0)
            daemon.on_live = call.go_live
            try:
                await daemon.converse(call_cfg, worker, client, call_clips, call_deadline,
                                     call)
            finally:
                daemon.on_live = None
                daemon.calls.append(call_record(call))
                log.info("conversation_over", conversation=conversations, reason=call.end_reason,
                         windows=daemon.summary.get("windows"))
                daemon.publish("call_ended", conversation=conversations,
                               reason=call.end_reason)
                server.release(call)
                call = None
        if daemon.summary:  # the last conversation's summary, and how many there were
            daemon.summary["conversations"] = conversations
    finally:
        pinger.cancel()
        await server.stop()


async def use_voice(worker: Any, cfg: Any, voice_clips: dict[str, tuple[Any, float]],
                     slot: Any = None) -> tuple[Any, float]:
    """Prime the call's voice (on the engine's thread; into ``slot`` when batched) and pick
    its thinking clips."""
    from entropi.clips.render import thinking_clips

    await (slot or worker).use_voice(cfg.voice.prompt_path)
    name = cfg.voice.prompt_file
    if name not in voice_clips:
        clips = await worker.call(thinking_clips, worker.engine, cfg, False)
        voice_clips[name] = (clips, cfg.secondary_model.deadline_seconds
                             or clips.longest_seconds + 1.0)
    return voice_clips[name]


async def next_call(server: Any, stop: asyncio.Event) -> WebSocketTransport | None:
    getter = asyncio.ensure_future(server.next_call())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if getter.done():
        return getter.result()
    getter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await getter
    return None


async def watchdog(daemon: Daemon, idle) -> None:
    while True:
        await asyncio.sleep(_PING_SECONDS)
        if idle():
            daemon.notifier.watchdog()
