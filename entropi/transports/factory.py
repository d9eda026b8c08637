"""Which transport a config asks for: the one place that chooses.

``audio.input`` names it: ``device`` / ``wav`` (sound devices and WAV files, ``local``),
``discord`` (the bot in a voice channel). Websocket calls are not opened here: the server
accepts them one caller at a time (:mod:`entropi.transports.websocket`).
"""

from __future__ import annotations

from entropi.config import Config
from entropi.core.errors import InputError
from entropi.transports.base import AudioTransport


def open_transport(cfg: Config) -> AudioTransport:
    """Build (not start) the transport ``cfg.audio`` names; errors are one line each."""
    if cfg.audio.input == "discord":
        from entropi.transports.discord import open_discord  # py-cord is an optional extra

        return open_discord(cfg)
    if cfg.audio.input == "websocket":
        raise InputError("audio.input: websocket calls are opened by the server "
                         "(entropi.transports.websocket), not by open_transport")
    from entropi.transports.local import open_audio

    return open_audio(cfg.audio)
