"""The one interface every audio transport offers the controller: frames in, frames out.

The controller sees 80 ms frames (1920 float32 samples at 24 kHz), never sockets or
devices. ``AudioIO`` (sound devices, WAV files) is the first implementation; network
transports (websocket, Discord) sit beside it and keep their own clock and buffers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from entropi.audio.stats import AudioStats

if TYPE_CHECKING:
    from entropi.llm import Utterance


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


def active_speakers(audio: object) -> Sequence[str]:
    """Names of who spoke in the frame ``read_frame`` returned last, for transports that
    know them (Discord); empty for a microphone, a WAV file or a single caller."""
    names = getattr(audio, "active_speakers", None)
    return names() if callable(names) else ()


def emit_text(audio: object, text: str | None) -> None:
    """Hand the agent's text piece to transports that carry text (moshi's kind 2)."""
    write = getattr(audio, "write_text", None)
    if text and callable(write):
        write(text)
@dataclass(frozen=True)
class Persisted:
    """What of a finished window may be written to journal, profile and transcript file."""

    utterances: list[Utterance]
    prompt: str
    directive: dict[str, Any] | None
    people: tuple[str, ...] = ()  # opted-in speakers heard, for the profile's people roster


def persisted(audio: object, utterances: list[Utterance], prompt: str,
              directive: dict[str, Any] | None) -> Persisted:
    """The consent gate for transports that know who spoke (Discord): everything the live
    window used, less what people who did not opt in said. Others keep it all."""
    gate = getattr(audio, "persisted", None)
    if callable(gate):
        return gate(utterances, prompt, directive)
    return Persisted(utterances, prompt, directive)
