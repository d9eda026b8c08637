"""Every path a run reads or writes, checked as a file before anything is opened.

A config names the same file many ways (a hard link, a symlink, ``a/../b``): pairs are
compared by device and inode, and two roles may share a file only when both merely read it.
FIFOs, sockets, devices and symlink loops are refused for every role (they would block an
open or crash a ``resolve()``), and nothing is written inside a kernel file system (/proc,
/sys…). Checks use ``stat`` only, so a hostile path can never hang them.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from entropi.config import Config
from entropi.core.errors import ConfigError
from entropi.core.files import (
    PSEUDO_FILESYSTEMS,
    PathKindError,
    file_identity,
    filesystem_type,
    stat_kind,
)
from entropi.service.status import Guarded, lock_path


@dataclass(frozen=True)
class Role:
    key: str  # the config key (or option) that names it, as the error line says it
    path: Path
    writes: bool
    folder: bool = False
    shared: bool = False  # a cache: other programs and roles may use it too


def roles(cfg: Config, summary_json: Path | None = None) -> list[Role]:
    """What a run with ``cfg`` reads and writes (the files it derives included)."""
    out: list[Role] = []

    def add(key: str, path: Path | None, writes: bool, **kw: bool) -> None:
        if path is not None:
            out.append(Role(key, Path(path).expanduser(), writes, **kw))

    add("--config", cfg.source_path, False)
    m = cfg.model
    if m.source == "local":
        for key in ("moshi_weight", "mimi_weight", "tokenizer"):
            add(f"model.{key}", getattr(m, key), False)
    else:
        add("model.cache_dir", m.cache_dir, True, folder=True, shared=True)
    add("voice.prompt_file", cfg.voice.prompt_path, False)
    add("voice.thinking_clips", cfg.voice.thinking_clips, False, folder=True)
    add("voice.rendered_clips_dir", cfg.voice.rendered_clips_dir, True, folder=True)
    sm = cfg.secondary_model
    if sm.backend == "embedded":
        add("secondary_model.embedded.gguf", sm.embedded.gguf, False)
    a = cfg.audio
    if a.input == "wav":
        add("audio.input_wav", a.input_wav, False)
    if a.output == "wav":
        add("audio.output_wav", a.output_wav, True)
    if a.input == "websocket":
        add("server.tls_cert", cfg.server.tls_cert, False)
        add("server.tls_key", cfg.server.tls_key, False)
        add("server.tokens_file", cfg.server.tokens_file, False)
    if cfg.asr.backend == "faster-whisper" and cfg.asr.model.startswith(("/", ".", "~")):
        add("asr.model", Path(cfg.asr.model), False, folder=True)
    add("asr.cache_dir", cfg.asr.cache_dir, True, folder=True, shared=True)
    add("conversation.transcript_file", cfg.conversation.transcript_file, True)
    if cfg.memory.enabled:
        from entropi.memory.ledger import ledger_path

        add("memory.journal_dir", cfg.memory.journal_dir, True, folder=True)
        add("memory.profile_path", cfg.memory.profile_path, True)
        add("the ledger beside memory.profile_path", ledger_path(cfg.memory.profile_path), True)
        if cfg.server.per_user:
            add("memory.users_dir", cfg.memory.users_root, True, folder=True)
    if a.input == "discord":
        from entropi.memory.consent import consent_path

        add("discord.consent_file", consent_path(cfg), True)
    status = cfg.service.status_file
    if status is not None:
        add("service.status_file", status, True)
        add("the lock beside service.status_file", lock_path(status), True)
    add("--summary-json", summary_json, True)
    return out


# What a second daemon must not share (caches, clips and the status file are not data; the
# status file has its own lock).
_DATA_KEYS = ("audio.output_wav", "conversation.transcript_file", "memory.journal_dir",
              "memory.users_dir", "memory.profile_path", "the ledger beside memory.profile_path",
              "discord.consent_file", "--summary-json")


def guarded(cfg: Config, summary_json: Path | None = None) -> list[Guarded]:
    """The run's data, for :class:`~entropi.service.status.RunLock`."""
    return [Guarded(r.key, r.path, r.folder) for r in roles(cfg, summary_json)
            if r.key in _DATA_KEYS]


def check_paths(cfg: Config, summary_json: Path | None = None) -> None:
    """Raise one ConfigError line for the first path no run should touch."""
    found = roles(cfg, summary_json)
    ids = [_check_kind(role) for role in found]
    for i, role in enumerate(found):
        for j in range(i):
            other = found[j]
            if ids[i] is None or ids[i] != ids[j] or not (role.writes or other.writes):
                continue
            if role.shared and other.shared:
                continue
            raise ConfigError(f"{role.key}: {role.path} is the same "
                              f"{'folder' if role.folder else 'file'} as {other.key} "
                              f"({other.path}); give each its own")
    _check_journal_alone(found)


def _check_kind(role: Role) -> tuple[int, int] | str | None:
    """Refuse what no role may be; the file's identity (None for a missing read-only file,
    which the existence checks name)."""
    try:
        st = stat_kind(role.path)
    except PathKindError as exc:
        fix = exc.fix(f"a real {'folder' if role.folder else 'file'}")
        raise ConfigError(f"{role.key}: {role.path} {exc}; {fix}") from None
    if st is not None:
        is_dir = stat.S_ISDIR(st.st_mode)
        if role.folder and not is_dir:
            raise ConfigError(f"{role.key}: {role.path} is not a folder; give a folder path")
        if not role.folder and is_dir:
            raise ConfigError(f"{role.key}: {role.path} is a folder; give a file name")
    if role.writes:
        fs = filesystem_type(role.path)
        if fs is not None and fs[0] in PSEUDO_FILESYSTEMS:
            raise ConfigError(f"{role.key}: {role.path} is inside {fs[1]} ({fs[0]}), a "
                              "kernel file system; give a path on a disk")
    if st is None and not role.writes:
        return None
    return file_identity(role.path)


def _check_journal_alone(found: list[Role]) -> None:
    """The journal folder is entropi's own (it is tightened to 0700 and its files purged):
    nothing else is written inside it, and it is not inside another written folder."""
    journal = next((r for r in found if r.key == "memory.journal_dir"), None)
    if journal is None:
        return
    root = Path(os.path.realpath(journal.path))
    for role in found:
        if role is journal or role.shared or not role.writes:
            continue
        here = Path(os.path.realpath(role.path))
        if root in here.parents:
            raise ConfigError(f"{role.key}: {role.path} is inside memory.journal_dir "
                              f"({journal.path}); keep the journal folder for the journal")
        if role.folder and role.writes and here in root.parents:
            raise ConfigError(f"memory.journal_dir: {journal.path} is inside {role.key} "
                              f"({role.path}); give the journal its own folder")
