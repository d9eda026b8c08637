"""One module per subcommand; each exposes ``register(subparsers, parents)``."""

from __future__ import annotations

import argparse

from entropi.config import Config, load_config
from entropi.logs import configure_logging


def add_config_option(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--config", "-c", required=required, metavar="PATH",
                   help="YAML config file (see config.yaml)")


def load_for_command(args: argparse.Namespace, check: bool = True) -> Config:
    """Load the config and re-apply logging with the config's settings unless overridden."""
    cfg = load_config(args.config, check=check)
    configure_logging(args.log_level or cfg.logging.level, args.log_format or cfg.logging.format)
    return cfg
