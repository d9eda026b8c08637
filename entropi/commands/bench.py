"""``entropi bench NAME``: timing goals live here, not in unit tests (results: BENCHMARKS.md)."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import platform
import time

from entropi import bench


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="run a benchmark (engine, audio, compaction, memory, loop)",
                       description="Benchmarks; results go to BENCHMARKS.md.")
    sub_ = p.add_subparsers(dest="bench", metavar="NAME", required=True, parser_class=type(p))
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{bench.__name__}.{info.name}")
        b = sub_.add_parser(info.name, parents=parents, help=module.HELP, description=module.HELP)
        b.add_argument("--json", action="store_true", help="print one JSON object")
        module.add_arguments(b)
        b.set_defaults(func=_runner(module))


def _runner(module):
    def run(args: argparse.Namespace) -> int:
        started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        result = module.run(args)
        result = {"bench": module.__name__.rsplit(".", 1)[-1], "date": started,
                  "machine": f"{platform.node()} {platform.machine()} "
                             f"{platform.processor() or ''}".strip()} | result
        if args.json:
            print(json.dumps(result))
        else:
            width = max(len(k) for k in result)
            for key, value in result.items():
                shown = f"{value:.3f}" if isinstance(value, float) else value
                print(f"{key:<{width}}  {shown}")
        return 0
    return run
