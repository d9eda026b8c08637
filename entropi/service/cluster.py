"""The cluster: replicas of the daemon behind Ray Serve (``entropi cluster``, ``entropi[cluster]``).

Each Serve replica is one process owning one GPU (``cluster.num_gpus``; 0: a CPU process)
that runs the ordinary daemon's callers loop on its own engine; the callers reach it through
Serve's proxy, which routes each websocket to a replica (ASGI ingress, ``transports/websocket/
asgi.py``; the protocol itself is :class:`~entropi.transports.websocket.line.CallLine`, the same
as the single daemon's). ``max_ongoing_requests`` is the replica's slots plus one, so a caller
arriving while every slot is taken still reaches a replica and hears kind 5 "busy" at once; the
proxy holds at most ``cluster.queue_bound`` more (HTTP 503 past it) instead of queueing.

Memory follows the person: a caller's token names a user (``server.tokens``/``tokens_file``),
whose memory lives in ``memory.users_dir/<user>/`` (a folder every replica reaches: a shared
filesystem) under a per-person lock held for the call (:mod:`entropi.memory.person`). Each
replica keeps a status file in ``cluster.state_dir`` (``entropi status --cluster``).

A replica killed mid-call: Serve's proxy ends that caller's socket; :class:`ReplicaLossNotice`,
installed in the proxy (``PROXY_ENV``), first tells the caller with kind 5. Serve starts a
new replica.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entropi.config import Config
from entropi.config.users import user_home
from entropi.core.errors import ConfigError, MemoryFileError
from entropi.core.logs import configure_logging, get_logger
from entropi.memory.person import PersonBusy, PersonLock, lock_person
from entropi.service.daemon import Daemon, RunOptions
from entropi.transports.websocket import protocol as p
from entropi.transports.websocket.asgi import AsgiApp
from entropi.transports.websocket.feed import LiveFeed
from entropi.transports.websocket.line import CallLine

log = get_logger(__name__)

APP_NAME = "entropi"
DEPLOYMENT = "EntropiReplica"
OWNER = "owner"  # who the single-user files belong to (owner's token, or no tokens)
REPLICA_LOST = "the replica serving this call stopped; please call again"
# What Serve's proxy needs in its environment (read when it starts: a local Ray inherits it
# from us; on a cluster, export it before `ray start`): our middleware, and routing on fresh
# replica loads. Serve's router otherwise trusts a cached load for up to 10 s and prefers a
# replica with a cached entry, even a busy one, over an idle one whose entry has expired:
# the caller would hear "busy" with a slot free next door. A new call costs one probe.
PROXY_ENV = {"RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH":
             "entropi.service.cluster:proxy_middlewares",
             "RAY_SERVE_QUEUE_LENGTH_CACHE_TIMEOUT_S": "0"}


def slots(cfg: Config) -> int:
    """Calls one replica serves at once: its engine's slots."""
    return cfg.runtime.max_conversations


# --------------------------------------------------------------------------- people


def person_folder(cfg: Config, user_id: str | None) -> tuple[Path, Path | None]:
    """The folder of the person's memory, and the share it must be on (None: local)."""
    if user_id is None:  # the owner's token, or no tokens: the single-user files
        return cfg.memory.profile_path.parent, None
    return user_home(cfg, user_id), cfg.memory.users_dir


@dataclass
class PersonCall:
    """A checked request plus the person's lock; the call's ``request`` on the line."""

    request: p.CallRequest
    lock: PersonLock | None

    @property
    def user_id(self) -> str | None:
        return self.request.user_id

    @property
    def text_prompt(self) -> str | None:
        return self.request.text_prompt

    @property
    def voice(self) -> Path | None:
        return self.request.voice

    @property
    def ignored(self) -> tuple[str, ...]:
        return self.request.ignored

    def config(self, cfg: Config) -> Config:
        return self.request.config(cfg)  # the person's own folder (config.users.for_user)

    def done(self) -> None:
        """The call's memory is flushed: the person may call again (anywhere)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None


class Admission:
    """Takes the caller's lock on their memory; refusals are one line, before anything is
    written."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def __call__(self, req: p.CallRequest) -> PersonCall:
        if not self.cfg.memory.enabled:
            return PersonCall(req, None)
        who = req.user_id or OWNER
        try:
            lock = lock_person(*person_folder(self.cfg, req.user_id))
        except PersonBusy:
            raise p.Refused(f"busy: {who} is already in a call") from None
        except MemoryFileError as exc:
            log.error("memory_unreachable", user=who, error=str(exc))
            raise p.Refused(f"memory unavailable: {exc}") from None
        return PersonCall(req, lock)


def check_access(cfg: Config, env: Mapping[str, str]) -> None:
    """The tokens the replicas will read: every ``server.tokens`` variable set, and some
    token on a proxy reachable from other machines (one line each, before Ray starts)."""
    p.Access.load(cfg, env)


# --------------------------------------------------------------------------- a replica


class ReplicaServer:
    """What the daemon's callers loop takes calls from, in a replica: the line the ASGI app
    feeds (Serve's proxy owns the listening socket)."""

    def __init__(self, line: CallLine) -> None:
        self.line = line
        self.feed = line.feed
        self.port = 0
        self.url = "(behind the cluster's proxy)"  # the proxy, not the replica, listens
        self.started = asyncio.Event()

    async def start(self) -> None:
        self.started.set()

    async def stop(self) -> None:
        return None

    async def next_call(self) -> Any:
        return await self.line.next_call()

    def release(self, call: Any = None) -> None:
        self.line.release(call)


def replica_config(cfg: Config, replica: str) -> Config:
    """The replica's own status file (and run lock beside it) in the shared state folder."""
    service = cfg.service.model_copy(
        update={"status_file": cfg.cluster.state_dir / f"replica-{replica}.json"})
    return cfg.model_copy(update={"service": service})


class Replica:
    """One replica's state: the daemon (engine, LLM, callers loop) and the line it serves."""

    def __init__(self, cfg: Config, replica: str, env: Mapping[str, str]) -> None:
        self.id = replica
        self.cfg = replica_config(cfg, replica)
        self.access = p.Access.load(self.cfg, env)
        self.line = CallLine(self.cfg, LiveFeed(), slots(self.cfg), admit=Admission(self.cfg))
        self.server = ReplicaServer(self.line)
        self.daemon = Daemon(self.cfg, RunOptions(signals=False, shared_data=True),
                             server=self.server)
        self.daemon.status_extra = self.status
        self.task: asyncio.Task[int] | None = None

    async def start(self) -> None:
        """Load the engine; return once calls can be taken (raise if the daemon failed)."""
        self.task = asyncio.create_task(self.daemon.serve(), name=f"replica-{self.id}")
        started = asyncio.ensure_future(self.server.started.wait())
        await asyncio.wait({self.task, started}, return_when=asyncio.FIRST_COMPLETED)
        if self.task.done():
            started.cancel()
            code = self.task.result()  # a raised error propagates: Serve logs it and retries
            raise RuntimeError(f"replica {self.id}: the daemon stopped at start (exit {code})")
        log.info("replica_ready", replica=self.id, slots=self.line.slots)

    def status(self) -> dict[str, Any]:
        return {"replica": self.id, "host": socket.gethostname(), "slots": self.line.slots,
                "slots_in_use": self.line.in_use, "calls": self.line.answered,
                "refused": self.line.refused,
                "users": [getattr(c.request, "user_id", None) or OWNER for c in self.line.active]}

    def app(self) -> AsgiApp:
        return AsgiApp(self.line, self.daemon.live_status, self.access)

    def check(self) -> None:
        if self.task is not None and self.task.done():
            raise RuntimeError(f"replica {self.id}: the daemon has stopped")

    async def stop(self) -> None:
        self.daemon.request_stop()
        if self.task is not None:
            await asyncio.wait({self.task}, timeout=self.cfg.service.stop_timeout_seconds + 5)


# --------------------------------------------------------------------------- deployment


def deployment_options(cfg: Config) -> dict[str, Any]:
    c = cfg.cluster
    opts: dict[str, Any] = {
        "name": DEPLOYMENT,
        # One more than the slots: a caller past them still reaches a replica and hears "busy".
        "max_ongoing_requests": slots(cfg) + 1,
        "max_queued_requests": c.queue_bound,
        "ray_actor_options": {"num_gpus": c.num_gpus, "num_cpus": c.num_cpus},
        "health_check_period_s": 2.0,
        "graceful_shutdown_timeout_s": cfg.service.stop_timeout_seconds + 5,
    }
    if c.max_replicas is not None:
        opts["autoscaling_config"] = {"min_replicas": c.min_replicas,
                                      "max_replicas": c.max_replicas,
                                      "target_ongoing_requests": max(1, slots(cfg) - 1)}
    else:
        opts["num_replicas"] = c.replicas
    return opts


def build_app(cfg: Config) -> Any:
    """The Serve application: the replica class behind the ASGI ingress, bound to ``cfg``."""
    from ray import serve  # heavy: only the cluster needs Ray

    @serve.ingress()
    class EntropiReplica:
        async def __init__(self, cfg: Config) -> None:
            configure_logging(cfg.logging.level, cfg.logging.format)  # a fresh Ray worker
            ctx = serve.get_replica_context()
            self.replica = Replica(cfg, ctx.replica_id.unique_id, os.environ)
            await self.replica.start()

        def __serve_build_asgi_app__(self) -> AsgiApp:
            return self.replica.app()

        async def check_health(self) -> None:
            self.replica.check()

        async def __del__(self) -> None:
            if hasattr(self, "replica"):  # not when __init__ failed
                await self.replica.stop()

    return serve.deployment(EntropiReplica, **deployment_options(cfg)).bind(cfg)


def start_ray(cfg: Config) -> None:
    """Join ``cluster.address``, or start a small local Ray (no dashboard)."""
    import ray

    for key, value in PROXY_ENV.items():  # inherited by a local Ray's processes
        os.environ.setdefault(key, value)
    if ray.is_initialized():
        return
    c = cfg.cluster
    if c.address is not None:
        ray.init(address=c.address, log_to_driver=False)
        return
    replicas = c.max_replicas or c.replicas
    ray.init(num_cpus=max(1, int(c.num_cpus * replicas + 0.999)), include_dashboard=False,
             log_to_driver=False)


def check_resources(cfg: Config) -> None:
    """A replica that needs a GPU the cluster does not have would wait forever: say so."""
    import ray

    c = cfg.cluster
    need = c.num_gpus * (c.min_replicas if c.max_replicas is not None else c.replicas)
    have = ray.cluster_resources().get("GPU", 0.0)
    if need > have:
        raise ConfigError(f"cluster.num_gpus: {need:g} GPU(s) needed for the replicas, the "
                          f"Ray cluster has {have:g}; add GPU workers or set "
                          "cluster.num_gpus: 0 for CPU replicas")


def deploy(cfg: Config) -> None:
    """Start Serve's proxy on server.host:server.port and run the application."""
    from ray import serve

    start_ray(cfg)
    check_resources(cfg)
    http: dict[str, Any] = {"host": cfg.server.host, "port": cfg.server.port}
    if cfg.server.tls_cert is not None and cfg.server.tls_key is not None:
        http |= {"ssl_certfile": str(cfg.server.tls_cert), "ssl_keyfile": str(cfg.server.tls_key)}
    serve.start(http_options=http)
    serve.run(build_app(cfg), name=APP_NAME, route_prefix="/", blocking=False)


# --------------------------------------------------------------------------- the proxy


class ReplicaLossNotice:
    """ASGI middleware in Serve's proxy: a call whose replica vanished (killed, crashed)
    hears kind 5 and a close instead of a bare dropped socket."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "websocket" or scope.get("path") != "/api/chat":
            await self.app(scope, receive, send)
            return
        seen = {"accepted": False, "closed": False}

        async def watch_send(msg: dict[str, Any]) -> None:
            if msg["type"] == "websocket.accept":
                seen["accepted"] = True
            elif msg["type"] == "websocket.close":
                seen["closed"] = True
            await send(msg)

        async def watch_receive() -> dict[str, Any]:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                seen["closed"] = True  # the caller left: nobody to tell
            return msg

        try:
            await self.app(scope, watch_receive, watch_send)
        finally:
            if seen["accepted"] and not seen["closed"]:
                try:
                    await send({"type": "websocket.send", "bytes": p.error_message(REPLICA_LOST)})
                    await send({"type": "websocket.close", "code": 1011})
                except Exception as exc:  # the caller is gone too
                    log.debug("replica_loss_notice_failed", error=str(exc))


def proxy_middlewares() -> list[Any]:
    """Called by Serve's proxy at start (``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH``)."""
    from starlette.middleware import Middleware  # ships with ray[serve]

    return [Middleware(ReplicaLossNotice)]


def shutdown() -> None:
    """Stop the application and Serve, and leave Ray (a local one stops with us)."""
    import ray
    from ray import serve

    if ray.is_initialized():
        serve.shutdown()
        ray.shutdown()
