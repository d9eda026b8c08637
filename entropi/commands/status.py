"""``entropi status``: the live state of a running daemon (from its status file)."""

from __future__ import annotations

import argparse
import json
import time

from entropi.commands import add_config_option, load_for_command
from entropi.service.status import read_status


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", parents=parents, help="show the live state of a running daemon")
    add_config_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_for_command(args, check=False)
    path = cfg.service.status_file
    data = read_status(path) if path is not None else None
    if data is None:
        print(f"not running (no status file at {path})")
        return 3
    if args.json:
        print(json.dumps(data))
    elif "error" in data:
        print(f"not running: {data['error']}")
    else:
        age = time.time() - float(data["updated_at"])
        head = "running" if data["running"] else (
            "not running (stale status file)" if data.get("stale") or data.get("state") not in
            ("stopped", None) else "not running")
        print(f"{head}: pid {data.get('pid')}, state {data.get('state')}, updated {age:.1f} s ago")
        for key in ("window", "windows", "frames", "prompt_tokens", "last_end",
                    "last_handover_ms", "dead_air_frames", "audio"):
            if key in data:
                print(f"  {key}: {data[key]}")
        if "discord" in data:
            d = data["discord"]
            print(f"  discord channel: {d.get('channel')} "
                  f"({'connected' if d.get('connected') else 'reconnecting'})")
            print(f"  present: {', '.join(d.get('present') or []) or '(nobody)'}")
            print(f"  opted in: {', '.join(d.get('opted_in') or []) or '(nobody)'}")
    return 0 if data["running"] else 3
