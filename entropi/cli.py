"""The ``entropi`` command line.

Each subcommand lives in its own module under :mod:`entropi.commands` and exposes
``register(subparsers, parents)``; this file only discovers them, sets up logging and
turns :class:`EntropiError` into one line on stderr with the error's exit code.
Command modules import torch, moshi and friends inside their handlers, never at the top,
so ``entropi --help`` and ``check-config`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from entropi import __version__, commands
from entropi.core.errors import EntropiError, UsageError
from entropi.core.logs import configure_logging, redact

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what `yes | head` leaves too


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def common_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default=None,
                   help="override logging.level from the config")
    p.add_argument("--log-format", choices=["auto", "console", "json"], default=None,
                   help="override logging.format from the config (json: one JSON object "
                        "a line, for journald)")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="entropi",
                     description="Full-duplex voice companion on NVIDIA PersonaPlex.")
    parser.add_argument("--version", action="version", version=f"entropi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    parents = [common_options()]
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub, parents)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        configure_logging(args.log_level or "info", args.log_format or "auto")
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, not at exit: a closed pipe is handled below
        return code
    except BrokenPipeError:
        # `entropi check-config | head`: the reader has what it wanted. Point stdout at
        # /dev/null so the interpreter's final flush cannot print a traceback either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except EntropiError as err:
        print(redact(err.line()), file=sys.stderr)  # an error may quote a server's reply
        return err.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
