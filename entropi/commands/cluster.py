"""``entropi cluster``: serve callers from replicas behind Ray Serve until stopped."""

from __future__ import annotations

import argparse
import os
import signal
import threading

from entropi.commands import add_config_option, load_for_command
from entropi.config import Config
from entropi.core.errors import ConfigError
from entropi.core.logs import register_secret


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "cluster", parents=parents, help="serve callers from GPU replicas behind Ray Serve",
        description="Deploy cluster.replicas (or min/max_replicas) replicas of the daemon, each "
                    "with its own engine, behind Ray Serve's proxy on server.host:server.port; "
                    "runs until SIGTERM/SIGINT. Needs pip install 'entropi[cluster]'.")
    add_config_option(p)
    p.set_defaults(func=run)


def cluster_config(cfg: Config) -> Config:
    """Replicas serve websocket callers whatever audio.input says."""
    audio = cfg.audio.model_copy(update={"input": "websocket", "output": "websocket"})
    return cfg.model_copy(update={"audio": audio})


def run(args: argparse.Namespace) -> int:
    cfg = cluster_config(load_for_command(args))
    register_secret(os.environ.get(cfg.server.token_env))  # users' tokens: by Access.load
    from entropi.service.cluster import check_access, deploy, shutdown
    from entropi.service.preflight import preflight

    check_access(cfg, os.environ)
    preflight(cfg)  # the checks `run` makes, before any replica loads a model
    try:
        import ray  # noqa: F401 (heavy, optional: only the cluster needs it)
    except ImportError:
        raise ConfigError("entropi cluster needs Ray Serve: pip install 'entropi[cluster]'") \
            from None
    if cfg.model.source == "tiny":  # made once here, not by every replica at the same time
        from entropi.engine.tiny import ensure_tiny_checkpoint

        ensure_tiny_checkpoint(cfg.model.cache_dir, cfg.model.tiny_seed)

    stop = threading.Event()

    def on_signals() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())

    on_signals()
    try:
        deploy(cfg)
        on_signals()  # again: starting Ray installs its own (it aborts on SIGTERM)
        c = cfg.cluster
        replicas = (f"{c.min_replicas}-{c.max_replicas}" if c.max_replicas is not None
                    else str(c.replicas))
        print(f"entropi cluster: {replicas} replicas behind "
              f"http://{cfg.server.host}:{cfg.server.port}/ (stop with Ctrl-C)", flush=True)
        stop.wait()
    finally:
        shutdown()
    return 0
