"""``entropi cache-voice`` as a real process: outputs, skipping, and per-file errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import sphn
import torch

from entropi.engine.voice import read_voice_meta


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "entropi", "cache-voice", "--log-format", "json",
                           *args], capture_output=True, text=True, timeout=120)


def test_cache_voice_writes_skips_and_reports_bad_files(make_config, voice_dir: Path,
                                                        tmp_path: Path) -> None:
    cfg = make_config()
    config = str(cfg.source_path)
    good = voice_dir / "voice.wav"
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("these are my notes, not audio\n" * 20)
    long = tmp_path / "long.wav"
    sphn.write_wav(str(long), (0.1 * np.sin(np.arange(24_000 * 5) / 9)).astype(np.float32),
                   24_000)
    out = tmp_path / "voices"

    run = _cli(str(empty), str(good), str(text), str(long), "-o", str(out), "--config", config)
    assert run.returncode == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("input error:")]
    assert len(errors) == 3
    assert any("empty.wav" in e for e in errors)
    assert any("notes.wav: not a readable audio file" in e for e in errors)
    assert any("long.wav: 5.0 s is longer than voice.max_prompt_seconds (4 s" in e
               for e in errors)
    assert "3 of 4 file(s) failed" in run.stderr
    cached = out / "voice.voice.pt"
    meta = read_voice_meta(cached)
    assert meta is not None and meta["source"] == "voice.wav"
    assert meta["codes"].shape[0] == 8 and meta["codes"].shape[1] > 10
    assert sorted(p.name for p in out.iterdir()) == ["voice.voice.pt"]

    before = cached.stat().st_mtime_ns
    again = _cli(str(good), "-o", str(out), "--config", config)
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout and cached.stat().st_mtime_ns == before

    # A changed recording is re-encoded.
    pcm, rate = sphn.read(str(good))
    changed = tmp_path / "voice.wav"
    sphn.write_wav(str(changed), pcm[0, : pcm.shape[1] // 2], rate)
    third = _cli(str(changed), "-o", str(out), "--config", config)
    assert third.returncode == 0, third.stderr
    new = torch.load(cached, weights_only=True)["codes"]
    assert new.shape[1] < meta["codes"].shape[1]
