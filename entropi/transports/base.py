"""The one interface every audio transport offers the controller: frames in, frames out.

The controller sees 80 ms frames (1920 float32 samples at 24 kHz), never sockets or
devices. Optional abilities are small Protocols a transport may also implement, checked
with ``isinstance`` (never found by attribute name):

- :class:`KnowsSpeakers`: who spoke in the last frame (Discord), for the user's turns;
- :class:`CarriesText`: the agent's text pieces (moshi's kind 2 on the websocket);
- :class:`GatesConsent`: what of a window may be written to disk (Discord's opt-in roster);
- :class:`ReportsStatus`: extra lines for the status file (Discord: channel, people).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from entropi.audio.stats import AudioStats
from entropi.memory.consent import Persisted
from entropi.text.utterance import Utterance


@runtime_checkable
class AudioTransport(Protocol):
    async def start(self) -> None:
        """Open devices / sockets; called once before the first frame."""

    async def read_frame(self) -> np.ndarray | None:
        """The next (1920,) float32 input frame, or None when the input has ended."""

    def write_frame(self, pcm: np.ndarray) -> None:
        """Queue one (1920,) output frame; never blocks."""

    def stats(self) -> AudioStats:
        """Counters (dead air = underruns + late frames) for logs, status and benchmarks."""

    async def close(self) -> None:
        """Drain and close; idempotent."""


@runtime_checkable
class KnowsSpeakers(Protocol):
    def active_speakers(self) -> Sequence[str]:
        """Names of who spoke in the frame ``read_frame`` returned last."""


@runtime_checkable
class CarriesText(Protocol):
    def write_text(self, text: str) -> None:
        """Send one piece of the agent's text to the other end."""


@runtime_checkable
class GatesConsent(Protocol):
    def persisted(self, utterances: list[Utterance], prompt: str,
                  directive: dict[str, Any] | None) -> Persisted:
        """Everything the live window used, less what people who did not opt in said."""


@runtime_checkable
class ReportsStatus(Protocol):
    def status_info(self) -> dict[str, Any]:
        """Transport-specific state for ``entropi status``."""


def status_info(audio: object) -> dict[str, Any] | None:
    return audio.status_info() if isinstance(audio, ReportsStatus) else None


def active_speakers(audio: object) -> Sequence[str]:
    """Who spoke last, for transports that know (empty for a microphone, a WAV, one caller)."""
    return audio.active_speakers() if isinstance(audio, KnowsSpeakers) else ()


def emit_text(audio: object, text: str | None) -> None:
    """Hand the agent's text piece to transports that carry text."""
    if text and isinstance(audio, CarriesText):
        audio.write_text(text)


def persisted(audio: object, utterances: list[Utterance], prompt: str,
              directive: dict[str, Any] | None) -> Persisted:
    """The consent gate for transports that have one; others keep the whole window."""
    if isinstance(audio, GatesConsent):
        return audio.persisted(utterances, prompt, directive)
    return Persisted(utterances, prompt, directive)
