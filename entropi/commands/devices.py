"""``entropi devices``: the sound devices PortAudio sees, with default marks."""

from __future__ import annotations

import argparse
import dataclasses
import json


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("devices", parents=parents,
                       help="list audio devices (index, name, channels, rate, defaults)",
                       description="List audio devices for audio.input_device / "
                                   "audio.output_device (a name substring or the index). "
                                   "'>' marks the default input, '<' the default output.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from entropi.transports.devices import list_devices  # loads PortAudio: only when asked

    devices = list_devices()
    if args.json:
        print(json.dumps({"devices": [dataclasses.asdict(d) for d in devices]}, indent=2))
        return 0
    if not devices:
        print("no audio devices found (is a sound server such as jackd or pipewire running?)")
        return 0
    for d in devices:
        mark = (">" if d.default_input else " ") + ("<" if d.default_output else " ")
        print(f"{mark} {d.index:>3}  {d.name:<32} {d.hostapi:<28} "
              f"in {d.max_input_channels:>2}  out {d.max_output_channels:>2}  "
              f"{d.default_samplerate:>7.0f} Hz")
    print("\n> default input   < default output   "
          "(use a name substring or the index in audio.input_device / audio.output_device)")
    return 0
