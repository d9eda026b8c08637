"""One module per subcommand; each exposes ``register(subparsers, parents)``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path

from entropi.config import Config, load_config
from entropi.core.errors import UsageError
from entropi.core.logs import configure_logging, register_secret

CONFIG_ENV = "ENTROPI_CONFIG"
SYSTEM_CONFIG = Path("/etc/entropi/config.yaml")  # what scripts/install-service.sh writes


def add_config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", type=Path, metavar="PATH",
                   help=f"YAML config file (default: ${CONFIG_ENV}, else {SYSTEM_CONFIG})")


def config_path(given: Path | None, env: Mapping[str, str] | None = None,
                system: Path = SYSTEM_CONFIG) -> Path:
    """``--config``, else ``$ENTROPI_CONFIG``, else the installed service's config."""
    env = os.environ if env is None else env
    if given is not None:
        return given
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    if system.exists():
        return system
    raise UsageError(f"no config: pass --config PATH, set ${CONFIG_ENV}, or install one at "
                     f"{system} (scripts/install-service.sh); config.yaml in the checkout is "
                     "the annotated example")


def load_for_command(args: argparse.Namespace, check: bool = True) -> Config:
    """Load the config and re-apply logging with the config's settings unless overridden."""
    args.config = config_path(args.config)
    cfg = load_config(args.config, check=check)
    for secret in (cfg.secondary_model.api_key, cfg.model.hf_token):
        register_secret(secret.get_secret_value() if secret is not None else None)
    if cfg.memory.encryption_key_env:
        register_secret(os.environ.get(cfg.memory.encryption_key_env))
    configure_logging(args.log_level or cfg.logging.level, args.log_format or cfg.logging.format)
    return cfg
