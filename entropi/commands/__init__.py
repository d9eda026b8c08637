"""One module per subcommand; each exposes ``register(subparsers, parents)``."""

from __future__ import annotations

import argparse
import os

from entropi.config import Config, load_config
from entropi.core.logs import configure_logging, register_secret


def add_config_option(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--config", "-c", required=required, metavar="PATH",
                   help="YAML config file (see config.yaml)")


def load_for_command(args: argparse.Namespace, check: bool = True) -> Config:
    """Load the config and re-apply logging with the config's settings unless overridden."""
    cfg = load_config(args.config, check=check)
    for secret in (cfg.secondary_model.api_key, cfg.model.hf_token):
        register_secret(secret.get_secret_value() if secret is not None else None)
    if cfg.memory.encryption_key_env:
        register_secret(os.environ.get(cfg.memory.encryption_key_env))
    configure_logging(args.log_level or cfg.logging.level, args.log_format or cfg.logging.format)
    return cfg
