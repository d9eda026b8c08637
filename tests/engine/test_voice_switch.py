"""Per-call voice switching: a snapshot built for another voice primes exactly like stepping
that voice's whole prefix; recent voices are cached (bounded); a voice over the context budget
is refused without touching the live state."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from entropi.core.errors import InputError
from entropi.engine import engine as engine_mod
from entropi.engine.engine import Engine, load_engine
from entropi.engine.voice import save_voice

from .conftest import PROMPT
from .helpers import run_frames


@pytest.fixture(scope="module")
def voices(voice_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("switch-voices")
    shutil.copy(voice_dir / "voice.wav", root / "voice.wav")
    subprocess.run(["espeak-ng", "-v", "en-gb", "-s", "140", "-p", "70", "-w",
                    str(root / "other.wav"), "A different speaker, higher and slower."],
                   check=True)
    return root


@pytest.fixture(scope="module")
def engine(make_config, voices: Path) -> Engine:
    cfg = make_config()
    return load_engine(cfg.model_copy(update={
        "voice": cfg.voice.model_copy(update={"prompt_dir": voices})}))


def primed_frames(engine: Engine, reference: bool = False):
    (engine.prime_reference if reference else engine.prime)(PROMPT)
    return run_frames(engine, n=30)


def test_switch_primes_the_new_voice_and_back(engine: Engine, voices: Path,
                                              monkeypatch) -> None:
    default_codes = engine.voice.codes.copy()
    base = primed_frames(engine)

    first = engine.use_voice(voices / "other.wav")
    assert (first.name, first.cached, engine.voice_builds) == ("other.wav", False, 1)
    assert engine.voice.source.endswith("other.wav") and engine.voice_key.endswith("other.wav")
    assert first.frames == engine.voice_frames != default_codes.shape[1]  # a longer WAV
    other = primed_frames(engine)
    # The switched snapshot primes exactly like resetting and stepping the whole new prefix.
    ref = primed_frames(engine, reference=True)
    torch.testing.assert_close(other[0], ref[0], atol=1e-4, rtol=1e-4)
    assert torch.equal(other[1], ref[1])
    assert not torch.equal(other[1], base[1])

    again = engine.use_voice(voices / "other.wav")  # the same caller again: no LM pass
    assert again.cached and engine.voice_builds == 1
    assert torch.equal(primed_frames(engine)[1], other[1])

    back = engine.use_voice(voices / "voice.wav")  # the configured voice: never rebuilt
    assert back.cached and engine.voice_builds == 1
    np.testing.assert_array_equal(engine.voice.codes, default_codes)
    assert torch.equal(primed_frames(engine)[1], base[1])

    # Bounded: with room for two, a third voice evicts "other", never the configured one.
    monkeypatch.setattr(engine_mod, "VOICE_CACHE", 2)
    codes = np.ascontiguousarray(engine.voice.codes[:, ::-1][:, :20])
    save_voice(voices / "third.voice.pt", codes, voices / "voice.wav", "tiny")
    assert not engine.use_voice(voices / "third.voice.pt").cached
    assert engine.use_voice(voices / "voice.wav").cached
    assert not engine.use_voice(voices / "other.wav").cached  # was evicted: built again
    assert engine.voice_builds == 3


def test_voice_over_the_budget_is_refused_and_nothing_changes(engine: Engine,
                                                              voices: Path) -> None:
    engine.use_voice(voices / "voice.wav")
    base = primed_frames(engine)
    key, builds = engine.voice_key, engine.voice_builds
    long = np.random.default_rng(0).integers(0, 2048, (8, 80))  # limit: 4 s = 50 frames
    save_voice(voices / "long.voice.pt", long, voices / "voice.wav", "tiny")
    with pytest.raises(InputError, match=r"'long.voice.pt' is 80 frames .*allows 50 frames"):
        engine.use_voice(voices / "long.voice.pt")
    assert (engine.voice_key, engine.voice_builds) == (key, builds)
    assert torch.equal(primed_frames(engine)[1], base[1])


def test_a_callers_voice_plays_its_own_rendered_clips_or_the_bundled_ones(
        engine: Engine, voices: Path, tmp_path: Path) -> None:
    from entropi.clips.render import render_to_cache, thinking_clips
    from tests.service.conftest import ROOT

    v = engine.cfg.voice.model_copy(update={
        "prompt_file": "other.wav", "render_clips": "auto", "thinking_lines": ["One moment."],
        "rendered_clips_dir": tmp_path, "thinking_clips": ROOT / "voices" / "thinking",
        "render": engine.cfg.voice.render.model_copy(update={"takes": 1})})
    cfg = engine.cfg.model_copy(update={"voice": v})
    bundled = len(list((ROOT / "voices" / "thinking").glob("*.wav")))
    # While a caller waits nothing is rendered, even with render_clips: auto.
    assert len(thinking_clips(engine, cfg, may_render=False)) == bundled
    assert not (tmp_path / "other").exists()
    engine.use_voice(voices / "other.wav")
    render_to_cache(engine, cfg)  # what `entropi cache-clips --voice other.wav` does
    assert len(thinking_clips(engine, cfg, may_render=False)) == 1  # that voice's own clip
