"""One memory per person: a caller's token names a user id, the user id names a folder.

``for_user(cfg, user_id)`` is the config of one person's conversation: journal, profile,
ledger (beside the profile), transcript file and Discord consent file all move under
``memory.users_root/<user_id>/``; nothing else changes. The folder is made 0700 by whichever
writer first needs it (``core.files``). With no ``server.tokens``/``tokens_file`` there are no
users and the single-user files stay where ``memory.*`` puts them.

``caller_tokens(cfg, env)`` reads the tokens: each ``server.tokens`` variable from the
environment and each ``token user_id`` line of ``server.tokens_file`` (refused unless only its
owner may read it). Error lines name the variable or the file's line, never a token.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from entropi.config.schema import Config, check_user_id
from entropi.core.errors import ConfigError

MAX_TOKENS_FILE_BYTES = 1 << 20  # ~10k people; anything bigger is the wrong file


def user_id_or_error(user_id: str, where: str) -> str:
    """``user_id`` if it is a valid id, else a ConfigError naming ``where`` it came from."""
    try:
        return check_user_id(user_id)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def user_home(cfg: Config, user_id: str) -> Path:
    """``<memory.users_root>/<user_id>``: the id is checked, so it is a plain name."""
    return cfg.memory.users_root / user_id_or_error(user_id, "user")


def for_user(cfg: Config, user_id: str) -> Config:
    """``cfg`` with every file about the person under their own folder (idempotent)."""
    home = user_home(cfg, user_id)
    # users_dir pinned: its default follows journal_dir, which moves into the home.
    memory = cfg.memory.model_copy(update={
        "journal_dir": home / "journal", "profile_path": home / cfg.memory.profile_path.name,
        "users_dir": cfg.memory.users_root})
    conv = cfg.conversation
    transcript = conv.transcript_file
    # consent_file None already means "beside the profile", i.e. in the home folder.
    consent = cfg.discord.consent_file
    return cfg.model_copy(update={
        "memory": memory,
        "conversation": conv.model_copy(update={
            "transcript_file": home / transcript.name if transcript is not None else None}),
        "discord": cfg.discord.model_copy(update={
            "consent_file": home / consent.name if consent is not None else None}),
    })


def known_users(cfg: Config) -> list[str]:
    """User ids that have a folder under ``memory.users_root`` (sorted)."""
    try:
        return sorted(p.name for p in cfg.memory.users_root.iterdir()
                      if p.is_dir() and not p.is_symlink() and _is_user_id(p.name))
    except OSError:
        return []


def _is_user_id(name: str) -> bool:
    try:
        check_user_id(name)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- tokens


def caller_tokens(cfg: Config, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every caller's token → user id. A person may have several tokens; two people may
    never share one (the server could not tell them apart)."""
    env = os.environ if env is None else env
    table: dict[str, str] = {}
    where_of: dict[str, str] = {}

    def add(token: str, user_id: str, where: str) -> None:
        if token in table:
            raise ConfigError(f"{where}: the same token as {where_of[token]}; give every "
                              "token its own secret value")
        table[token], where_of[token] = user_id, where

    for var, user_id in cfg.server.tokens.items():
        token = env.get(var, "")
        if not token:
            raise ConfigError(f"server.tokens: environment variable {var} (user {user_id}) "
                              "is not set; export it or remove the line (keys name variables; "
                              "tokens themselves go in server.tokens_file)")
        add(token, user_id, f"server.tokens: {var} (user {user_id})")
    if cfg.server.tokens_file is not None:
        for lineno, token, user_id in read_tokens_file(cfg.server.tokens_file):
            add(token, user_id,
                f"server.tokens_file: {cfg.server.tokens_file}: line {lineno} (user {user_id})")
    return table


def read_tokens_file(path: Path) -> list[tuple[int, str, str]]:
    """``(line, token, user_id)`` for each ``token user_id`` line; blank lines and lines
    starting with ``#`` are skipped."""
    where = f"server.tokens_file: {path}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO: no hang
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file; create it (chmod 600) with one "
                          "'TOKEN USER_ID' line per person") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot open: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{where}: is not a regular file")
        # Whoever else can read it can call as anyone in it: ssh's rule for private keys.
        if info.st_mode & 0o077:
            raise ConfigError(f"{where}: mode {stat.S_IMODE(info.st_mode):04o} lets others "
                              f"read the tokens; run chmod 600 {path}")
        raw = f.read(MAX_TOKENS_FILE_BYTES + 1)
    if len(raw) > MAX_TOKENS_FILE_BYTES:
        raise ConfigError(f"{where}: over {MAX_TOKENS_FILE_BYTES >> 10} KiB; is this the "
                          "right file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 2:  # never echo the line: it holds a token
            raise ConfigError(f"{where}: line {lineno}: expected 'TOKEN USER_ID' "
                              f"(two words), found {len(fields)}")
        out.append((lineno, fields[0], user_id_or_error(fields[1], f"{where}: line {lineno}")))
    return out
