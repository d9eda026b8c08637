"""User speech recognition behind a small interface.

``UserTranscriber.transcribe`` is blocking and slow (tens to hundreds of ms): only the
:class:`~entropi.hearing.turns.TurnTranscriber` worker thread calls it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

import numpy as np

from entropi.config import AsrSection, ModelSection
from entropi.core.errors import ModelError
from entropi.core.logs import get_logger

log = get_logger(__name__)

_MISSING = ("asr.backend is faster-whisper but the package is missing; install the extra: "
            "pip install 'entropi[asr]' (or set asr.backend: none)")

# Approximate weight memory of the CTranslate2 whisper models (float16 MB; int8 about half).
_SIZES_MB = {"tiny": 75, "base": 145, "small": 485, "medium": 1530, "large": 3100,
             "distil-small": 335, "distil-medium": 790, "distil-large": 1510, "turbo": 1620}


class UserTranscriber(Protocol):
    def transcribe(self, pcm16k: np.ndarray) -> str:
        """Words in a finished user turn (16 kHz float32 mono); '' when nothing was said."""
        ...

    def describe(self) -> str:
        """One line for logs and check-config: backend, model, device."""
        ...


def resolve_device(cfg: AsrSection) -> tuple[str, str]:
    device = cfg.device
    if device == "auto":
        try:
            import ctranslate2

            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        except ImportError:
            device = "cpu"
    compute = cfg.compute_type
    if compute == "auto":
        compute = "float16" if device == "cuda" else "int8"
    return device, compute


def memory_estimate_mb(cfg: AsrSection) -> int | None:
    """Rough weight memory of the configured model (None: unknown or a local directory)."""
    if cfg.backend == "none":
        return 0
    if cfg.backend == "kyutai":
        from entropi.hearing.kyutai import memory_estimate_mb as kyutai_mb

        return kyutai_mb(cfg)
    path = Path(cfg.model).expanduser()
    if (path / "model.bin").is_file():
        return round((path / "model.bin").stat().st_size / 2**20)
    name = cfg.model.rsplit("/", 1)[-1].removeprefix("faster-whisper-").removesuffix(".en")
    name = name.removeprefix("faster-").split("-v")[0]
    mb = _SIZES_MB.get(name)
    if mb is None:
        return None
    _, compute = resolve_device(cfg)
    return mb // 2 if compute.startswith("int8") else mb


class FasterWhisperTranscriber:
    """faster-whisper (CTranslate2): a model name is fetched through huggingface_hub (progress
    bar on a terminal, cached, offline afterwards); a directory is loaded as it is."""

    def __init__(self, cfg: AsrSection) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise ModelError(_MISSING) from None
        self.cfg = cfg
        self.device, self.compute_type = resolve_device(cfg)
        t0 = time.perf_counter()
        try:
            self.model = WhisperModel(
                model_dir(cfg), device=self.device, compute_type=self.compute_type,
                cpu_threads=cfg.threads)
        except ModelError:
            raise
        except Exception as exc:  # a broken model.bin, a device CTranslate2 cannot use
            raise ModelError(f"asr.model {cfg.model!r} failed to load on {self.device}/"
                             f"{self.compute_type}: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''} "
                             "(give a faster-whisper size such as base.en, a hub repo, or a "
                             "local CTranslate2 directory; or asr.backend: none)") from None
        log.info("asr_ready", model=cfg.model, device=self.device,
                 compute_type=self.compute_type, load_s=round(time.perf_counter() - t0, 2))

    def transcribe(self, pcm16k: np.ndarray) -> str:
        segments, _ = self.model.transcribe(
            pcm16k, language=self.cfg.language, beam_size=1, vad_filter=False,
            condition_on_previous_text=False, without_timestamps=True)
        return " ".join(s.text.strip() for s in segments).strip()

    def describe(self) -> str:
        return f"faster-whisper {self.cfg.model} ({self.device} {self.compute_type})"


# What a CTranslate2 whisper repo holds that the recogniser needs (as faster-whisper fetches).
_MODEL_FILES = ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json",
                "vocabulary.*"]


def _model_repo(cfg: AsrSection) -> Path | str:
    """The local directory, or the hub repo a size name stands for (nothing fetched)."""
    path = Path(cfg.model).expanduser()
    if path.is_dir():
        missing = [f for f in ("config.json", "model.bin") if not (path / f).is_file()]
        if missing:
            raise ModelError(f"asr.model {cfg.model!r}: the folder has no {missing[0]}; give "
                             "a CTranslate2 whisper model directory")
        return path
    if cfg.model.startswith(("/", ".", "~")):
        raise ModelError(f"asr.model {cfg.model!r}: no such directory (a CTranslate2 whisper "
                         "model directory, a faster-whisper size such as base.en, or a hub "
                         "repo)")
    try:
        from faster_whisper.utils import _MODELS
    except ImportError:
        raise ModelError(_MISSING) from None
    repo = _MODELS.get(cfg.model, cfg.model)
    if "/" not in repo or repo.count("/") != 1 or not all(repo.split("/")):
        raise ModelError(f"asr.model {cfg.model!r} is neither a directory, a faster-whisper "
                         f"size ({', '.join(sorted(_MODELS))}) nor a hub repo (owner/name)")
    return repo


def check_model(cfg: AsrSection) -> None:
    """What ``run`` would refuse about ``asr.model`` before loading it: a bad name, a folder
    that is no model and, offline, a model not cached yet (never downloads)."""
    from huggingface_hub import constants

    if isinstance(_model_repo(cfg), str) and constants.HF_HUB_OFFLINE:
        model_dir(cfg)  # offline: the cache lookup alone


def model_dir(cfg: AsrSection) -> str:
    """A local CTranslate2 directory as it is; a size name (``base.en``) or hub repo fetched
    through huggingface_hub: cached, offline afterwards, and with its progress bars (which
    faster-whisper's own download turns off) so a first run on a terminal shows progress."""
    repo = _model_repo(cfg)
    if isinstance(repo, Path):
        return str(repo)
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo, allow_patterns=_MODEL_FILES,
                                 cache_dir=str(cfg.cache_dir) if cfg.cache_dir else None)
    except Exception as exc:  # offline and not cached, no such repo, network down
        raise ModelError(f"asr.model {cfg.model!r}: cannot fetch {repo} from the Hugging Face "
                         f"hub ({type(exc).__name__}); connect once to cache it, or give a "
                         "local CTranslate2 directory, or asr.backend: none") from None


def open_transcriber(cfg: AsrSection, model: ModelSection | None = None
                     ) -> UserTranscriber | None:
    """The configured recogniser, loaded (blocking; a bad model is a ModelError line)."""
    if cfg.backend == "none":
        return None
    if cfg.backend == "kyutai":
        from entropi.hearing.kyutai import open_kyutai

        return open_kyutai(cfg, model or ModelSection())
    return FasterWhisperTranscriber(cfg)
