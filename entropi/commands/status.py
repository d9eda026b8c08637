"""``entropi status``: the live state of a running daemon (from its status file)."""

from __future__ import annotations

import argparse
import json
import socket
import time
from pathlib import Path

from entropi.commands import add_config_option, load_for_command
from entropi.service.status import read_status


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", parents=parents, help="show the live state of a running daemon")
    add_config_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--cluster", action="store_true",
                   help="the replicas of `entropi cluster` (from cluster.state_dir)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_for_command(args, check=False)
    if args.cluster:
        return cluster_status(cfg.cluster.state_dir, args.json)
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


def cluster_status(state_dir: Path, as_json: bool) -> int:
    """One line per replica that ever wrote a status file: running or gone, its calls."""
    replicas = [(f, read_status(f)) for f in sorted(state_dir.glob("replica-*.json"))]
    rows = [d | {"file": str(f)} for f, d in replicas if d is not None]
    here = socket.gethostname()
    for d in rows:  # another machine's pid means nothing here: its file's age tells
        if "error" not in d and d.get("host", here) != here:
            d["running"] = not d["stale"] and d.get("state") != "stopped"
    if as_json:
        print(json.dumps(rows))
    elif not rows:
        print(f"no replicas (no status files in {state_dir})")
    for d in [] if as_json else rows:
        if "error" in d:
            print(f"  {d['error']}")
            continue
        head = "running" if d["running"] else "gone"
        name = Path(d["file"]).stem.removeprefix("replica-")
        print(f"replica {name} on {d.get('host', '?')}: {head}, pid "
              f"{d.get('pid')}, state {d.get('state')}, slots in use "
              f"{d.get('slots_in_use', '?')}/{d.get('slots', '?')}, calls {d.get('calls', 0)}, "
              f"refused {d.get('refused', 0)}, users in calls: "
              f"{', '.join(d.get('users') or []) or '-'}")
    return 0 if any(d.get("running") for d in rows) else 3
