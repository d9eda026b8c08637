"""Finding sound devices by name substring or index (sounddevice is imported lazily)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

from entropi.core.errors import DeviceError

Direction = Literal["input", "output"]


def import_sounddevice() -> ModuleType:
    """sounddevice needs the PortAudio C library; WAV-only runs never get here."""
    try:
        import sounddevice
    except OSError as exc:  # raised when libportaudio is missing
        raise DeviceError(
            f"cannot load PortAudio ({exc}); install libportaudio2 or set audio.input / "
            "audio.output to wav"
        ) from None
    return sounddevice


def rescan() -> None:
    """Re-initialise PortAudio so devices that appeared after import (e.g. jackd) show up."""
    sd = import_sounddevice()
    release_portaudio()
    sd._initialize()


def release_portaudio() -> None:
    """Terminate PortAudio (closing its JACK client) before a sound server it uses stops.

    PortAudio's JACK host API asserts and aborts the process if it is terminated at exit
    after the server has gone; sounddevice's exit handler then finds nothing left to do.
    """
    sd = sys.modules.get("sounddevice")
    while sd is not None and sd._initialized > 0:
        sd._terminate()


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    default_input: bool
    default_output: bool

    def channels(self, direction: Direction) -> int:
        return self.max_input_channels if direction == "input" else self.max_output_channels

    def label(self) -> str:
        return f"{self.index}: {self.name!r} ({self.hostapi})"


def list_devices() -> list[DeviceInfo]:
    sd = import_sounddevice()
    hostapis = [h["name"] for h in sd.query_hostapis()]
    default_in, default_out = _defaults(sd)
    return [
        DeviceInfo(
            index=i, name=d["name"], hostapi=hostapis[d["hostapi"]],
            max_input_channels=d["max_input_channels"],
            max_output_channels=d["max_output_channels"],
            default_samplerate=float(d["default_samplerate"]),
            default_input=i == default_in, default_output=i == default_out,
        )
        for i, d in enumerate(sd.query_devices())
    ]


def _defaults(sd: ModuleType) -> tuple[int, int]:
    try:
        default_in, default_out = sd.default.device
    except (TypeError, ValueError):
        return -1, -1
    return int(default_in if default_in is not None else -1), int(
        default_out if default_out is not None else -1)


def resolve_device(ref: str | int | None, direction: Direction,
                   key: str = "audio device") -> int:
    """The PortAudio index for ``ref`` (None = system default); DeviceError lists what exists."""
    devices = _usable(direction)
    found = _match(ref, direction, devices)
    if found is None:
        rescan()  # a server started after import (jackd, pipewire) is only seen after this
        devices = _usable(direction)
        found = _match(ref, direction, devices)
    if found is not None:
        return found
    names = "; ".join(d.label() for d in devices) or "none"
    what = "no default device" if ref is None else f"no {direction} device matches {ref!r}"
    raise DeviceError(f"{key}: {what}; {direction} devices: {names} "
                      "(see `entropi devices`)")


def _usable(direction: Direction) -> list[DeviceInfo]:
    return [d for d in list_devices() if d.channels(direction) > 0]


def _match(ref: str | int | None, direction: Direction, devices: list[DeviceInfo]) -> int | None:
    if ref is None:
        defaults = [d.index for d in devices
                    if (d.default_input if direction == "input" else d.default_output)]
        return defaults[0] if defaults else None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
        wanted = int(ref)
        return wanted if any(d.index == wanted for d in devices) else None
    needle = ref.lower()
    exact = [d for d in devices if d.name.lower() == needle]
    if exact:
        return exact[0].index
    partial = [d for d in devices if needle in d.name.lower()]
    if len(partial) > 1:
        raise DeviceError(
            f"audio device {ref!r} is ambiguous for {direction}: "
            + "; ".join(d.label() for d in partial) + "; use a longer name or the index")
    return partial[0].index if partial else None
