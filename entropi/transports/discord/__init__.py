"""The Discord transport: the companion as its own bot in one voice channel (py-cord).

Needs the optional extra ``entropi[discord]`` (py-cord with voice) and the system libopus.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from entropi.config import Config
from entropi.core.errors import DiscordError

if TYPE_CHECKING:
    from entropi.transports.discord.consent import ConsentCommands
    from entropi.transports.discord.transport import DiscordTransport, Link


def require_token(cfg: Config, env: dict[str, str] | None = None) -> str:
    """The bot token from the environment, checked before any model loads."""
    env = dict(os.environ) if env is None else env
    token = env.get(cfg.discord.token_env, "").strip()
    if not token:
        raise DiscordError(f"discord.token_env: environment variable {cfg.discord.token_env} "
                           "is not set; put the bot token there (never in the config file)")
    try:
        import discord  # noqa: F401
    except ImportError:
        raise DiscordError("py-cord is not installed; pip install 'entropi[discord]'") \
            from None
    return token


def make_link(cfg: Config, token: str, commands: ConsentCommands,
              transport: DiscordTransport) -> Link:
    """The network side. Tests replace this one function (py-cord's voice client at its
    network boundary); everything else runs as in production."""
    from entropi.transports.discord.bot import DiscordLink

    return DiscordLink(cfg.discord, token, commands, on_leave=transport.left)


def open_discord(cfg: Config) -> DiscordTransport:
    from entropi.core.crypto import cipher_from_env
    from entropi.memory.consent import ConsentStore, consent_path
    from entropi.transports.discord.consent import ConsentCommands, ConsentGate
    from entropi.transports.discord.transport import DiscordTransport

    token = require_token(cfg)
    store = ConsentStore(consent_path(cfg), default_remember=cfg.discord.consent == "opt_out",
                         cipher=cipher_from_env(cfg.memory.encryption_key_env))
    transport = DiscordTransport(cfg.discord, link=None,  # type: ignore[arg-type]
                                 gate=ConsentGate(store), queue_frames=cfg.audio.queue_frames,
                                 jitter_frames=cfg.audio.jitter_frames,
                                 speech_dbfs=cfg.window.vad_threshold_dbfs - 10)
    transport.link = make_link(cfg, token, ConsentCommands(cfg, store), transport)
    return transport
