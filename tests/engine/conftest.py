"""Engine fixtures: a tiny random PersonaPlex-layout checkpoint generated once per session
(real loader, real moshi), an espeak-ng voice WAV and config files pointing at them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from entropi.config import Config, load_config
from entropi.engine.tiny import TinyPaths, ensure_tiny_checkpoint

TINY_SEED = 7
PROMPT = "You are Ada, a warm and curious companion who listens closely and speaks briefly."


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engine-cache")


@pytest.fixture(scope="session")
def tiny(cache_dir: Path) -> TinyPaths:
    return ensure_tiny_checkpoint(cache_dir, TINY_SEED)


@pytest.fixture(scope="session")
def voice_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real spoken voice prompt (espeak-ng renders 22.05 kHz: the loader must resample)."""
    root = tmp_path_factory.mktemp("voices")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(root / "voice.wav"),
                    "Hello there, this is my voice."], check=True)
    return root


@pytest.fixture(scope="session")
def make_config(tiny: TinyPaths, cache_dir: Path, voice_dir: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Config]:
    """Write a real YAML config (tiny model, greedy, CPU) and load it like the CLI does."""
    root = tmp_path_factory.mktemp("configs")
    counter = iter(range(10_000))

    def make(quantization: str = "none", prompt_file: str = "voice.wav",
             sampling: str = "use_sampling: false") -> Config:
        path = root / f"config{next(counter)}.yaml"
        path.write_text(
            f"model:\n  source: tiny\n  tiny_seed: {TINY_SEED}\n  cache_dir: {cache_dir}\n"
            f"runtime:\n  device: cpu\n  quantization: {quantization}\n  context_window: 400\n"
            f"voice:\n  prompt_dir: {voice_dir}\n  prompt_file: {prompt_file}\n"
            f"  max_prompt_seconds: 4\n"
            f"window:\n  min_seconds: 2\n  max_seconds: 10\n  grace_seconds: 1\n"
            f"sampling:\n  {sampling}\nconversation:\n  prompt_token_budget: 150\n")
        return load_config(path)

    make.root = root  # type: ignore[attr-defined]
    return make
