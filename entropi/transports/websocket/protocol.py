"""moshi's websocket protocol: message kinds and the checks on a caller's request.

Every message is binary; its first byte is the kind. Audio (kind 1) is Ogg Opus at 24 kHz,
one page per 80 ms frame. Text pieces (kind 2) are UTF-8. The handshake (kind 0) goes out
only after the persona is primed; an error (kind 5) is followed by closing the socket.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from entropi.config import Config, caller_tokens, for_user
from entropi.core.errors import ConfigError
from entropi.core.logs import register_secret

HANDSHAKE = 0
AUDIO = 1
TEXT = 2
CONTROL = 3
METADATA = 4
ERROR = 5
PING = 6
KNOWN_KINDS = {HANDSHAKE, AUDIO, TEXT, CONTROL, METADATA, ERROR, PING}

OGG_MAGIC = b"OggS"
# Query parameters Kyutai's and PersonaPlex's web UIs send; logged by name, never applied.
SAMPLING_PARAMS = ("text_temperature", "text_topk", "audio_temperature", "audio_topk",
                   "pad_mult", "repetition_penalty", "repetition_penalty_context", "seed",
                   "text_seed", "audio_seed", "worker_auth_id", "email")


def message(kind: int, payload: bytes = b"") -> bytes:
    return bytes([kind]) + payload


def error_message(text: str) -> bytes:
    return message(ERROR, text.encode())


class Refused(Exception):
    """A request the server answers with kind 5 and a close; ``str`` is the reason sent."""


@dataclass(frozen=True)
class CallRequest:
    """What a caller asked for in the query string, after checking."""

    text_prompt: str | None = None
    ignored: tuple[str, ...] = ()
    voice: Path | None = None  # a file found by listing the voices folder; None: the configured
    user_id: str | None = None  # whose token it was; None: the single-user files

    def config(self, cfg: Config) -> Config:
        """The config for this conversation: the caller's persona text as the first prompt,
        the caller's voice as ``voice.prompt_file`` (the thinking clips are looked up by it),
        the caller's own memory folder when their token named a user."""
        if self.user_id is not None:
            cfg = for_user(cfg, self.user_id)
        update: dict = {}
        if self.text_prompt is not None:
            update["conversation"] = cfg.conversation.model_copy(
                update={"initial_prompt": self.text_prompt})
        if self.voice is not None:  # its own folder: the user's voices or the presets
            update["voice"] = cfg.voice.model_copy(update={"prompt_dir": self.voice.parent,
                                                           "prompt_file": self.voice.name})
        return cfg.model_copy(update=update) if update else cfg


def check_request(query: Mapping[str, str], cfg: Config,
                  user_id: str | None = None,
                  voice_dirs: Sequence[Path] | None = None) -> CallRequest:
    """Validate PersonaPlex's query params; raise :class:`Refused` with the reason.
    ``user_id`` is the one :class:`Access` found for the caller's token; ``voice_dirs``: where
    ``voice_prompt`` is looked up (default: ``voice.prompt_dir``)."""
    name = query.get("voice_prompt")
    voice = find_voice(name, voice_dirs or (cfg.voice.prompt_dir,)) if name else None
    ignored = [k for k in query if k in SAMPLING_PARAMS]
    text = query.get("text_prompt")
    if text is not None and not cfg.server.allow_text_prompt:
        ignored.append("text_prompt")
        text = None
    if text is not None:
        text = text.strip()
        if not text or len(text) > cfg.server.max_text_prompt_chars:
            raise Refused(f"text_prompt must be 1 to {cfg.server.max_text_prompt_chars} "
                          "characters")
    return CallRequest(text_prompt=text, ignored=tuple(ignored), voice=voice, user_id=user_id)


VOICE_SUFFIXES = (".pt", ".wav", ".flac", ".ogg", ".mp3")  # presets, .voice.pt caches, audio


def find_voice(name: str, folders: Sequence[Path]) -> Path:
    """The voice file called exactly ``name`` in the first of ``folders`` that has one, found
    by listing them: the caller's text is compared with file names, never joined to a path
    (no traversal)."""
    if (len(name) > 128 or "/" in name or "\\" in name or name.startswith(".")
            or "\x00" in name or Path(name).is_absolute()):
        raise Refused("voice_prompt must be the name of a voice in the voices folder")
    voices = dict(list_voices(folders))
    if name not in voices:
        raise Refused(f"voice_prompt: no voice named {name!r}")
    return voices[name]


def list_voices(folders: Sequence[Path]) -> list[tuple[str, Path]]:
    """(name, file) of every voice a caller may pick, folder by folder, sorted by name
    within each; a name already offered by an earlier folder is left out."""
    out: list[tuple[str, Path]] = []
    seen: set[str] = set()
    for folder in folders:
        try:
            files = sorted(folder.iterdir(), key=lambda p: p.name)
        except OSError:
            continue  # not there (yet): nothing offered from it
        for f in files:
            if (f.name in seen or f.name.startswith(".") or
                    not f.name.lower().endswith(VOICE_SUFFIXES) or not f.is_file()):
                continue
            seen.add(f.name)
            out.append((f.name, f))
    return out


# --------------------------------------------------------------------------- access


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Caller:
    """Who a request's token belongs to."""

    user_id: str | None  # None: the single-user files (the owner's token, or no tokens at all)
    owner: bool  # the live view (/api/status, /api/events) shows every call: the owner's


class Access:
    """The server's tokens: the owner's (``server.token_env``) and each user's
    (``server.tokens``, ``server.tokens_file``). With none at all, everyone is the owner
    (a loopback bind only); with any, every request needs one of them."""

    def __init__(self, owner: str | None, users: Mapping[str, str] | None = None) -> None:
        self._owner = owner
        self._users = dict(users or {})
        self.open = owner is None and not self._users

    @classmethod
    def load(cls, cfg: Config, env: Mapping[str, str] | None = None) -> Access:
        """Read the tokens; refuse a non-loopback bind without any, and two people (or a
        person and the owner) sharing one."""
        env = os.environ if env is None else env
        owner = env.get(cfg.server.token_env) or None
        users = caller_tokens(cfg, env) if cfg.server.per_user else {}
        if cfg.server.per_user and not users:  # else: no token needed, the opposite of meant
            raise ConfigError(f"server.tokens_file: {cfg.server.tokens_file} has no "
                              "'TOKEN USER_ID' line; add one per person")
        if owner is None and not users and not is_loopback(cfg.server.host):
            raise ConfigError(f"server.host: {cfg.server.host} is reachable from other "
                              f"machines; set a token in ${cfg.server.token_env} or bind "
                              "127.0.0.1")
        if owner is not None and owner in users:
            raise ConfigError(f"server.token_env: ${cfg.server.token_env} holds user "
                              f"{users[owner]}'s token too; give the owner a token of their own")
        for token in [owner, *users]:  # a tokens file's are no environment variables
            register_secret(token)
        return cls(owner, users)

    @property
    def users(self) -> int:
        return len(self._users)

    def caller(self, query: Mapping[str, str], headers: Mapping[str, str]) -> Caller | None:
        """The caller the token names (None: no such token). The token comes as ?token=,
        a Bearer header or X-Entropi-Token; every known token is compared in constant time,
        with no early exit, so the time taken does not tell which one (or whether one)
        matched."""
        if self.open:
            return Caller(None, owner=True)
        given = presented_token(query, headers).encode()
        found: Caller | None = None
        if self._owner is not None and hmac.compare_digest(given, self._owner.encode()):
            found = Caller(None, owner=True)
        for token, user_id in self._users.items():
            if hmac.compare_digest(given, token.encode()):
                found = Caller(user_id, owner=False)
        return found


def presented_token(query: Mapping[str, str], headers: Mapping[str, str]) -> str:
    given = query.get("token") or headers.get("X-Entropi-Token") or ""
    auth = headers.get("Authorization", "")
    if not given and auth.startswith("Bearer "):
        given = auth[len("Bearer "):]
    return given
