"""``entropi cache-clips`` as a real process: reuse, re-render on a new voice, errors; the
trim and take rule."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import sphn
import yaml

from entropi.clips.cache import (
    SILENT_TAKE_DBFS,
    TakeInfo,
    cache_folder,
    choose_take,
    overlong_take,
    read_meta,
    trim_take,
)
from entropi.clips.render import render_to_cache
from entropi.config import load_config
from entropi.engine.engine import load_engine


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "entropi", "cache-clips", "--log-format",
                           "json", *args], capture_output=True, text=True, timeout=180)


def _config(make_config, tmp_path: Path, lines: list[str]) -> Path:
    data = yaml.safe_load(Path(make_config().source_path).read_text())
    data["voice"] |= {"prompt_dir": str(tmp_path), "thinking_lines": lines,
                      "rendered_clips_dir": str(tmp_path / "rendered"),
                      "render": {"takes": 1}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_cache_is_rendered_reused_and_rebuilt_for_a_new_voice(make_config, voice_dir: Path,
                                                              tmp_path: Path) -> None:
    shutil.copy(voice_dir / "voice.wav", tmp_path / "voice.wav")
    config = _config(make_config, tmp_path, ["Let me see.", "One moment."])
    cfg = load_config(config)
    stats = render_to_cache(load_engine(cfg), cfg)  # in-process: one subprocess fewer
    folder = tmp_path / "rendered" / "voice"
    assert stats.clips == 2 and cache_folder(cfg) == folder
    meta_file = folder / "clips.json"
    before = meta_file.stat().st_mtime_ns
    meta = read_meta(folder)
    assert meta is not None and meta["checkpoint"].startswith("tiny-v3-seed7/model.safetensors:")
    assert sorted(p.name for p in folder.iterdir()) == [
        "01_let_me_see.wav", "02_one_moment.wav", "clips.json"]

    again = _cli("--config", str(config), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["up_to_date"] is True
    assert meta_file.stat().st_mtime_ns == before  # nothing re-rendered
    assert "thinking_clip_rendered" not in again.stderr

    # Same file name, new recording: its sha changes, the clips are stale and rebuilt.
    pcm, rate = sphn.read(str(voice_dir / "voice.wav"))
    sphn.write_wav(str(tmp_path / "voice.wav"), pcm[0, : pcm.shape[1] * 2 // 3], rate)
    third = _cli("--config", str(config), "--json")
    assert third.returncode == 0, third.stderr
    out = json.loads(third.stdout)
    assert out["reason"] == "the voice file changed" and out["clips"] == 2
    assert out["folder"] == str(folder) and out["seconds_per_clip"] > 0
    assert read_meta(folder)["voice_sha256"] != meta["voice_sha256"]


def test_too_long_line_fails_before_loading_naming_the_line(make_config,
                                                            tmp_path: Path) -> None:
    long = "Let me think about that for a moment, that is an interesting question, friend."
    config = str(_config(make_config, tmp_path, ["One moment.", long]))
    (tmp_path / "voice.wav").write_bytes(b"")  # never read: the line check comes first
    run = _cli("--config", config)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith(
        f'input error: voice.thinking_lines[1] "{long}": needs about')
    assert "models_loaded" not in run.stderr


def test_trim_and_take_rule() -> None:
    import numpy as np

    rate = 24_000
    tone = 0.3 * np.sin(np.arange(rate) * 2 * np.pi * 200 / rate)
    raw = np.concatenate([np.zeros(rate // 2), tone, np.zeros(rate)]).astype(np.float32) + 0.1
    trimmed = trim_take(raw)
    assert 1.0 <= trimmed.size / rate <= 1.15 and abs(float(trimmed.mean())) < 0.02
    takes = [TakeInfo(0, 1, 3.5, -20.0),  # too long
             TakeInfo(1, 2, 1.0, -30.0),  # far from the others' level
             TakeInfo(2, 3, 1.3, -21.0),
             TakeInfo(3, 4, 1.25, -20.5),  # nearest 1.2 s and the median level: kept
             TakeInfo(4, 5, 1.2, SILENT_TAKE_DBFS - 1)]  # silent
    assert choose_take(takes, 1.2, 0.3, 3.0).take == 3
    assert choose_take(takes[:1], 1.2, 0.3, 3.0) is None
    # Nothing fits: the shortest audible over-long take is cut; silent ones never are.
    over = [TakeInfo(0, 1, 3.6, -20.0), TakeInfo(1, 2, 3.2, -21.0),
            TakeInfo(2, 3, 3.1, SILENT_TAKE_DBFS - 5), TakeInfo(3, 4, 0.1, -20.0)]
    assert choose_take(over, 1.2, 0.3, 3.0) is None
    assert overlong_take(over, 0.3, 3.0).take == 1
    assert overlong_take(over[2:], 0.3, 3.0) is None
