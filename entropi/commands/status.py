"""``entropi status``: the live state of a running daemon (from its status file).

Exit 0 while it runs and after a clean stop ("stopped"), 3 when nothing runs that said so
(no file, a file left by a daemon that died, an unreadable file).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from entropi.commands import add_config_option, load_for_command
from entropi.service.status import read_status

EXIT_NOT_RUNNING = 3  # LSB: program is not running

# Live figures, in the order shown, with their labels.
_FIELDS = (("window", "window"), ("windows", "windows done"), ("frames", "frames"),
           ("prompt_tokens", "prompt tokens"), ("last_end", "last window ended by"),
           ("last_handover_ms", "last handover ms"), ("dead_air_frames", "dead-air frames"),
           ("conversations", "conversations"), ("port", "port"))
_SUMMARY = (("windows", "windows"), ("audio_seconds", "audio s"), ("wall_seconds", "wall s"),
            ("dead_air_frames", "dead air frames"), ("fallbacks", "fallbacks"),
            ("conversations", "conversations"))


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", parents=parents, help="show the live state of a running daemon",
                       description="Read the daemon's status file: running (exit 0), stopped "
                                   "cleanly (exit 0) or not running (exit 3).")
    add_config_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_for_command(args, check=False)
    path = cfg.service.status_file
    data = read_status(path) if path is not None else None
    if data is None:
        print(f"not running (no status file at {path})")
        return EXIT_NOT_RUNNING
    stopped = data.get("state") == "stopped" and "error" not in data
    code = 0 if data["running"] or stopped else EXIT_NOT_RUNNING
    if args.json:
        print(json.dumps(data))
    elif "error" in data:
        print(f"not running: {data['error']}")
    else:
        print("\n".join(describe(data)))
    return code


def describe(data: dict[str, Any], now: float | None = None) -> list[str]:
    """The status as lines a person reads: the head, then one figure a line."""
    age = (time.time() if now is None else now) - float(data["updated_at"])
    when = _ago(age)
    if data["running"]:
        lines = [f"running: pid {data.get('pid')}, {data.get('state')}, updated {when}"]
    elif data.get("state") == "stopped":
        lines = [f"stopped: pid {data.get('pid')} stopped cleanly {when}"]
    else:  # the daemon died (or was killed) without writing "stopped"
        lines = [f"not running: pid {data.get('pid')} is gone; its last state was "
                 f"{data.get('state')} ({when}); see the service's log"]
    lines += [f"  {label}: {_value(data[key])}" for key, label in _FIELDS
              if data.get(key) is not None]
    audio = data.get("audio")
    if isinstance(audio, dict) and audio:
        lines.append("  audio: " + ", ".join(f"{k.replace('_', ' ')} {_value(v)}"
                                             for k, v in audio.items()))
    summary = data.get("summary")
    if isinstance(summary, dict) and summary:
        lines.append("  last run: " + ", ".join(f"{label} {_value(summary[key])}"
                                                for key, label in _SUMMARY if key in summary))
    if isinstance(data.get("discord"), dict):
        d = data["discord"]
        lines.append(f"  discord channel: {d.get('channel')} "
                     f"({'connected' if d.get('connected') else 'reconnecting'})")
        lines.append(f"  present: {', '.join(d.get('present') or []) or '(nobody)'}")
        lines.append(f"  opted in: {', '.join(d.get('opted_in') or []) or '(nobody)'}")
    return lines


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | tuple):
        return ", ".join(_value(x) for x in v) or "-"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_value(x)}" for k, x in v.items()) or "-"
    return str(v)
