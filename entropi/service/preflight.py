"""Everything ``run`` would trip over in a config, found before any model loads.

``check-config`` and ``run`` both call :func:`preflight` right after loading the config:
files that must exist are checked for existence, size and format (headers only, or the same
loaders the daemon uses when those are cheap), places the daemon writes to are checked for
writability without creating anything, and the persona is counted against its token budget
with the real tokenizer when the tokenizer file is already on disk. The first problem raises
one :class:`~entropi.core.errors.ConfigError` / :class:`~entropi.core.errors.InputError` line
(exit 2).
"""

from __future__ import annotations

import os
from pathlib import Path

from entropi.config import Config
from entropi.core.errors import ConfigError, InputError, ModelError
from entropi.service.paths import check_paths
from entropi.transports.websocket.protocol import Access

_AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def preflight(cfg: Config, summary_json: Path | None = None) -> None:
    """Raise the first problem ``run`` would hit with ``cfg``; return quietly otherwise."""
    check_paths(cfg, summary_json)  # stat only: nothing below opens a FIFO or a loop
    _check_model_files(cfg)
    _check_voice(cfg)
    _check_clips(cfg)
    _check_gguf(cfg)
    _check_audio(cfg)
    _check_conversations(cfg)
    _check_outputs(cfg, summary_json)
    _check_llm_key(cfg)
    _check_transport(cfg)
    _check_asr(cfg)
    if cfg.memory.encryption_key_env:
        from entropi.core.crypto import cipher_from_env

        cipher_from_env(cfg.memory.encryption_key_env)
    _check_persona_tokens(cfg)


def _check_conversations(cfg: Config) -> None:
    """B > 1 conversations share one batched model: only websocket callers come B at once."""
    b = cfg.runtime.max_conversations
    if b > 1 and cfg.audio.input != "websocket":
        raise ConfigError(f"runtime.max_conversations: {b} needs audio.input: websocket "
                          f"(audio.input: {cfg.audio.input} is one conversation); set it to 1")
    if b > 1 and cfg.asr.backend == "kyutai":
        raise ConfigError(f"runtime.max_conversations: {b} does not run with asr.backend: "
                          f"kyutai yet (one STT stream); use another backend or set it to 1")


# --------------------------------------------------------------------------- inputs


def _existing_file(path: Path, key: str, what: str) -> None:
    if not path.exists():
        raise ConfigError(f"{key}: {path}: no such {what}; fix the path")
    if not path.is_file():
        raise ConfigError(f"{key}: {path} is not a file; point it at the {what}")
    if path.stat().st_size == 0:
        raise ConfigError(f"{key}: {path} is empty; point it at a real {what}")


def _check_model_files(cfg: Config) -> None:
    m = cfg.model
    if m.source != "local":
        return
    for key in ("moshi_weight", "mimi_weight", "tokenizer"):
        _existing_file(getattr(m, key), f"model.{key}", "model file")


def _check_voice(cfg: Config) -> None:
    from entropi.core.constants import FRAME_RATE
    from entropi.engine.presets import hub_preset, preset_dir

    path = cfg.voice.prompt_path
    if hub_preset(cfg):  # PersonaPlex's preset: `run` fetches it with the checkpoint
        path = preset_dir(cfg) / cfg.voice.prompt_file
        if not path.is_file():
            return
    _existing_file(path, "voice.prompt_file", "voice file")
    max_seconds = cfg.voice.max_prompt_seconds
    if path.suffix.lower() in _AUDIO_SUFFIXES:
        from entropi.audio.wav import audio_seconds
        from entropi.engine.voice import read_voice_wav

        seconds = audio_seconds(path)  # the header first: a long WAV is never decoded
        if seconds is not None and seconds > max_seconds + 1e-6:
            raise InputError(f"{path}: {seconds:.1f} s is longer than "
                             f"voice.max_prompt_seconds ({max_seconds:g} s); trim the WAV")
        # Then decoded as the engine will (a few seconds): unreadable or silent is refused
        # here, not after the model loaded.
        read_voice_wav(path, max_seconds)
        return
    from entropi.engine.voice import load_voice_file

    # A preset or cached voice is small: the daemon's own loader checks format, shapes and
    # code ranges (the model's width is checked once it is loaded).
    load_voice_file(path, max_frames=int(max_seconds * FRAME_RATE + 1e-6))


def _check_clips(cfg: Config) -> None:
    from entropi.clips.player import ThinkingClips

    ThinkingClips.load(cfg.voice, quiet=True)  # a few short WAVs: the daemon's own loader


def _check_gguf(cfg: Config) -> None:
    sm = cfg.secondary_model
    gguf = sm.embedded.gguf
    if sm.backend != "embedded" or gguf is None:
        return
    key = "secondary_model.embedded.gguf"
    _existing_file(gguf, key, "GGUF model file")
    from entropi.llm.gguf import check_gguf

    check_gguf(gguf, key)  # metadata and tensor table: a garbage body fails here


def _check_audio(cfg: Config) -> None:
    a = cfg.audio
    if a.input != "wav" or a.input_wav is None:
        return
    from entropi.audio.wav import open_wav_source

    open_wav_source(a.input_wav).close()  # header checks; a long WAV is never decoded here


def _check_llm_key(cfg: Config) -> None:
    """OpenRouter without a key would fail when the LLM opens, after the model loaded."""
    sm = cfg.secondary_model
    if sm.backend == "openrouter" and sm.api_key is None and \
            not os.environ.get("OPENROUTER_API_KEY"):
        raise ConfigError("secondary_model.api_key: backend openrouter needs a key; export "
                          "OPENROUTER_API_KEY or set api_key: ${OPENROUTER_API_KEY}")


def _check_transport(cfg: Config) -> None:
    """Tokens and TLS files the transport needs, as it will read them."""
    if cfg.audio.input == "websocket":
        from entropi.transports.websocket.server import tls_context

        Access.load(cfg)  # a non-loopback bind without a token, a bad tokens file
        tls_context(cfg.server)  # the PEMs decoded, the key matching the certificate
    elif cfg.audio.input == "discord":
        from entropi.transports.discord import require_token

        require_token(cfg)


def _check_asr(cfg: Config) -> None:
    """The recogniser's model named right and, offline, already on disk."""
    asr = cfg.asr
    if asr.backend == "faster-whisper":
        from entropi.hearing.asr import check_model

        check_model(asr)
    elif asr.backend == "kyutai" and asr.kyutai_source == "hub":
        from huggingface_hub import constants, try_to_load_from_cache

        cached = try_to_load_from_cache(asr.kyutai_repo, "config.json")
        if constants.HF_HUB_OFFLINE and not isinstance(cached, str):
            raise ModelError(f"asr.kyutai_repo {asr.kyutai_repo!r} is not cached and "
                             "HF_HUB_OFFLINE is set; connect once to cache it, or set "
                             "asr.backend: faster-whisper or none")


# --------------------------------------------------------------------------- outputs


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _check_creatable(path: Path, key: str) -> None:
    """``path`` does not exist yet: its nearest existing ancestor must be a writable folder."""
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise ConfigError(f"{key}: cannot create {path}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}: cannot create {path}: {base} is not writable")


def writable_file(path: Path, key: str) -> None:
    path = Path(os.path.realpath(path))  # a dangling symlink is written through: its target
    if path.is_dir():
        raise ConfigError(f"{key}: {path} is a folder; give a file name")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{key}: {path} is not writable; fix its permissions or "
                              "choose another path")
        return
    _check_creatable(path, key)


def writable_dir(path: Path, key: str) -> None:
    path = Path(os.path.realpath(path))
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{key}: {path} is not a folder; give a folder path")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"{key}: {path} is not writable; fix its permissions or "
                              "choose another folder")
        return
    _check_creatable(path, key)


def _check_outputs(cfg: Config, summary_json: Path | None) -> None:
    if cfg.audio.output == "wav" and cfg.audio.output_wav is not None:
        writable_file(cfg.audio.output_wav, "audio.output_wav")
    if cfg.service.status_file is not None:
        writable_file(cfg.service.status_file, "service.status_file")
    if cfg.conversation.transcript_file is not None:
        writable_file(cfg.conversation.transcript_file, "conversation.transcript_file")
    if cfg.memory.enabled:
        writable_dir(cfg.memory.journal_dir, "memory.journal_dir")
        writable_file(cfg.memory.profile_path, "memory.profile_path")
    if cfg.server.per_user and cfg.audio.input == "websocket":  # each caller's folder
        writable_dir(cfg.memory.users_root, "memory.users_dir")
    if cfg.model.source != "local":
        writable_dir(cfg.model.cache_dir.expanduser(), "model.cache_dir")
    if summary_json is not None:
        writable_file(summary_json, "--summary-json")


# --------------------------------------------------------------------------- persona


def _tokenizer_on_disk(cfg: Config) -> Path | None:
    """The tokenizer file if it is already here (never downloads, never builds)."""
    m = cfg.model
    if m.source == "local":
        return m.tokenizer
    if m.source == "tiny":
        from entropi.engine.tiny import TINY_VERSION

        path = m.cache_dir.expanduser() / f"tiny-v{TINY_VERSION}-seed{m.tiny_seed}"
        return path / "tokenizer.model" if (path / "READY").is_file() else None
    from huggingface_hub import try_to_load_from_cache

    from entropi.engine.checkpoints import HUB_FILES

    found = try_to_load_from_cache(m.hf_repo, HUB_FILES["tokenizer"][1])
    return Path(found) if isinstance(found, str) else None


def _check_persona_tokens(cfg: Config) -> None:
    path = _tokenizer_on_disk(cfg)
    if path is None:
        return  # counted at load; config.check_prompt_size already refused the absurd
    from entropi.compaction.budget import PromptBudget
    from entropi.text.tokenizer import TextTokenizer

    try:
        tokenizer = TextTokenizer(path)
    except ModelError:
        return  # not this check's business: the model loader names the file
    conv = cfg.conversation
    PromptBudget(conv.base_persona, conv.prompt_token_budget, tokenizer.count)
