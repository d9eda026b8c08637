"""``entropi fetch``: download every model a config names, ahead of a service start.

The checkpoint (three files), PersonaPlex's voice presets (``voices.tgz``, all extracted),
the embedded LLM's GGUF and the recogniser: each through the same code ``run`` uses (same
cache, token and one-line errors), with huggingface_hub's progress bars. Run it as the
service user (``sudo -u entropi env HF_HOME=… entropi fetch``) so the files land in the
service's cache. :func:`plan` also tells ``check-config`` what is missing and how big it is.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from entropi.commands import add_config_option, load_for_command
from entropi.config import Config
from entropi.core.errors import ModelError
from entropi.core.logs import narrate

# Download sizes (GB) of the files config.yaml names, for "not cached: N GB" without asking
# the network; a file not listed is "size unknown".
APPROX_GB = {"model.safetensors": 16.74, "tokenizer-e351c8d8-checkpoint125.safetensors": 0.38,
             "tokenizer_spm_32k_3.model": 0.001, "voices.tgz": 0.1,
             "qwen2.5-1.5b-instruct-q4_k_m.gguf": 1.12, "Systran/faster-whisper-base.en": 0.15,
             "Systran/faster-whisper-tiny.en": 0.08, "Systran/faster-whisper-small.en": 0.49,
             "kyutai/stt-1b-en_fr": 2.3}


_LABELS = {"moshi_weight": "PersonaPlex weights", "mimi_weight": "Mimi audio codec",
           "tokenizer": "text tokenizer"}


@dataclass(frozen=True)
class Download:
    what: str  # what it is for, as a person reads it
    name: str  # repo/file
    approx_gb: float | None
    cached: Callable[[], bool]  # without the network
    get: Callable[[], object]  # fetches it (or finds it in the cache); raises EntropiError


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("fetch", parents=parents,
                       help="download every model the config names (before a service start)",
                       description="Download the PersonaPlex checkpoint, its voice presets, "
                                   "the embedded LLM's GGUF and the speech recogniser the "
                                   "config names, with progress; files already cached are "
                                   "skipped. Exit 0 when everything is there.")
    add_config_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_for_command(args, check=False)
    items = plan(cfg)
    if not items:
        narrate("nothing to fetch: every model this config names is a local file")
        return 0
    for n, item in enumerate(items, 1):
        size = f"{item.approx_gb:.2f} GB" if item.approx_gb is not None else "size unknown"
        state = "cached" if item.cached() else f"downloading, ~{size}"
        narrate(f"[{n}/{len(items)}] {item.what}: {item.name} ({state})")
        t0 = time.monotonic()
        item.get()  # an EntropiError is the one line cli prints, exit code included
        narrate(f"[{n}/{len(items)}] ok in {time.monotonic() - t0:.0f} s")
    narrate(f"all {len(items)} models are in the cache; `entropi run` starts without "
            "downloading")
    return 0


def plan(cfg: Config) -> list[Download]:
    """What ``run`` would download for this config (local files and the tiny model: nothing)."""
    return [*_checkpoint(cfg), *_gguf(cfg), *_asr(cfg)]


def download_gb(items: list[Download]) -> tuple[float, int]:
    """(GB these downloads take, how many of them have no known size)."""
    return (sum(i.approx_gb or 0.0 for i in items), sum(i.approx_gb is None for i in items))


def _hub_cached(repo: str, filename: str, cache_dir: Path | None = None) -> Callable[[], bool]:
    def cached() -> bool:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo, filename,
                                       cache_dir=str(cache_dir) if cache_dir else None)
        return isinstance(found, str) and os.path.isfile(found)
    return cached


def _checkpoint(cfg: Config) -> list[Download]:
    if cfg.model.source != "hub":
        return []
    from entropi.engine.checkpoints import HUB_FILES, download
    from entropi.engine.presets import ARCHIVE, ensure_presets, preset_dir

    repo = cfg.model.hf_repo
    out = [Download(_LABELS[key], f"{repo}/{name}", APPROX_GB.get(name),
                    _hub_cached(repo, name), lambda name=name: download(cfg, name))
           for key, name in HUB_FILES.values() if getattr(cfg.model, key) is None]
    complete = preset_dir(cfg) / ".complete"
    out.append(Download("PersonaPlex voice presets", f"{repo}/{ARCHIVE}", APPROX_GB[ARCHIVE],
                        lambda: complete.is_file() or _hub_cached(repo, ARCHIVE)(),
                        lambda: ensure_presets(cfg)))
    return out


def _gguf(cfg: Config) -> list[Download]:
    sm = cfg.secondary_model
    e = sm.embedded
    if sm.backend != "embedded" or e.gguf is not None or not (e.hf_repo and e.hf_file):
        return []
    from entropi.llm.embedded import hub_gguf

    return [Download("embedded LLM", f"{e.hf_repo}/{e.hf_file}", APPROX_GB.get(e.hf_file),
                     _hub_cached(e.hf_repo, e.hf_file),
                     lambda: hub_gguf(e.hf_repo, e.hf_file))]  # type: ignore[arg-type]


def _asr(cfg: Config) -> list[Download]:
    asr = cfg.asr
    if asr.backend == "kyutai" and asr.kyutai_source == "hub":
        repo = asr.kyutai_repo
        return [Download("speech recogniser (Kyutai STT)", repo, APPROX_GB.get(repo),
                         lambda: _snapshot(repo, None, offline=True),
                         lambda: _snapshot(repo, None, offline=False))]
    if asr.backend != "faster-whisper" or Path(asr.model).expanduser().is_dir():
        return []
    from entropi.hearing.asr import model_dir

    try:  # a size name (base.en) → its repo, as faster-whisper maps it
        from faster_whisper.utils import _MODELS
    except ImportError:  # the asr extra is missing: run says so at load
        _MODELS = {}
    repo = _MODELS.get(asr.model, asr.model)
    return [Download("speech recogniser (faster-whisper)", repo, APPROX_GB.get(repo),
                     lambda: _snapshot(repo, asr.cache_dir, offline=True),
                     lambda: model_dir(asr))]


def _snapshot(repo: str, cache_dir: Path | None, offline: bool) -> bool:
    """A whole model repo; with ``offline``, only whether the cache already has it."""
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo, cache_dir=str(cache_dir) if cache_dir else None,
                          local_files_only=offline,
                          allow_patterns=["*.json", "*.safetensors", "*.model", "*.bin",
                                          "*.txt", "vocabulary.*"])
    except Exception as exc:  # offline and not cached, no such repo, network down
        if offline:
            return False
        raise ModelError(f"{repo}: cannot fetch from the Hugging Face hub "
                         f"({type(exc).__name__}); check the network and the repo name") from None
    return True

