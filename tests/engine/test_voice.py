"""Voice prompts: loudness normalisation, WAV vs cached presets leave the model in one state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sphn
import torch

from entropi.core.errors import InputError
from entropi.engine.engine import Engine, load_engine
from entropi.engine.model import load_models
from entropi.engine.voice import (
    encode_pcm,
    load_voice_file,
    loudness_lufs,
    normalize_loudness,
    read_voice_wav,
    save_voice,
)

from .conftest import PROMPT
from .helpers import run_frames


def test_loudness_matches_bs1770_reference_tone() -> None:
    # BS.1770: a 997 Hz sine at 0 dBFS peak reads -3.01 LKFS; 20 dB down reads -23.01.
    t = np.arange(48_000 * 3) / 48_000
    tone = np.sin(2 * np.pi * 997 * t)
    assert loudness_lufs(tone, 48_000) == pytest.approx(-3.01, abs=0.05)
    assert loudness_lufs(0.1 * tone, 48_000) == pytest.approx(-23.01, abs=0.05)


def test_normalize_to_minus_24_lufs() -> None:
    rng = np.random.default_rng(0)
    noise = (0.01 * rng.standard_normal(24_000 * 2)).astype(np.float32)
    assert loudness_lufs(noise) < -30
    assert loudness_lufs(normalize_loudness(noise)) == pytest.approx(-24.0, abs=0.05)


def test_wav_is_resampled_channel0_and_normalised(voice_dir: Path, tmp_path: Path) -> None:
    pcm, rate = sphn.read(str(voice_dir / "voice.wav"))
    assert rate != 24_000  # espeak-ng renders 22.05 kHz: the reader must resample
    out = read_voice_wav(voice_dir / "voice.wav")
    assert out.size == round(pcm.shape[1] * 24_000 / rate)
    assert loudness_lufs(out) == pytest.approx(-24.0, abs=0.1)


@pytest.mark.parametrize("content, message", [
    (b"", "not a readable audio file|empty"),
    (b"RIFF nonsense, certainly not audio" * 10, "not a readable audio file"),
])
def test_bad_wav(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_voice_wav(bad)


def test_wav_without_samples(tmp_path: Path) -> None:
    empty = tmp_path / "zero.wav"
    sphn.write_wav(str(empty), np.zeros(0, np.float32), 24_000)  # a valid header, no audio
    with pytest.raises(InputError, match=r"zero\.wav: the audio is empty"):
        read_voice_wav(empty)


def test_too_long_and_silent_wavs(tmp_path: Path) -> None:
    long = tmp_path / "long.wav"
    sphn.write_wav(str(long), np.full(24_000 * 3, 0.1, np.float32), 24_000)
    with pytest.raises(InputError, match=r"long\.wav: 3\.0 s is longer than "
                                         r"voice\.max_prompt_seconds \(2 s"):
        read_voice_wav(long, max_seconds=2)
    silent = tmp_path / "silent.wav"
    sphn.write_wav(str(silent), np.zeros(24_000, np.float32), 24_000)
    with pytest.raises(InputError, match="silent"):
        read_voice_wav(silent)


def test_unknown_preset_format(tmp_path: Path) -> None:
    odd = tmp_path / "odd.pt"
    torch.save({"something": torch.zeros(3)}, odd)
    with pytest.raises(InputError, match="unknown voice format"):
        load_voice_file(odd)
    with pytest.raises(InputError, match="voice file not found"):
        load_voice_file(tmp_path / "missing.voice.pt")


@pytest.fixture(scope="module")
def wav_engine(make_config) -> Engine:
    return load_engine(make_config())


@pytest.fixture(scope="module")
def wav_run(wav_engine: Engine) -> tuple[torch.Tensor, torch.Tensor]:
    wav_engine.prime(PROMPT)
    return run_frames(wav_engine, 50, seed=4)


def test_cached_voice_primes_like_the_wav(make_config, voice_dir: Path, wav_engine: Engine,
                                          wav_run) -> None:
    models = load_models(make_config())
    wav = voice_dir / "voice.wav"
    codes = encode_pcm(models.mimi, read_voice_wav(wav))
    save_voice(voice_dir / "voice.voice.pt", codes, wav, "tiny")
    engine = load_engine(make_config(prompt_file="voice.voice.pt"))
    assert engine.voice.embeddings is None
    np.testing.assert_array_equal(engine.voice.codes, wav_engine.voice.codes)
    engine.prime(PROMPT)
    logits, out = run_frames(engine, 50, seed=4)
    torch.testing.assert_close(logits, wav_run[0], atol=1e-5, rtol=1e-5)
    assert torch.equal(out, wav_run[1])


def _fork_preset(engine: Engine, path: Path) -> None:
    """Write what PersonaPlex's fork saves: input embeddings of positions 0…V-2 (sum of the
    embedding tables, as its ``embed_codes``) and its 4-column delay cache, frame f of stream
    k at column (f + d_k) % 4."""
    lm, v = engine.lm, engine.voice_frames
    cols = engine._columns(engine.prefix(""))
    init = lm._get_initial_token()[0, :, 0]
    seq = torch.as_tensor(cols[:, : v - 1]).clone()
    for k, d in enumerate(lm.delays):
        seq[k, : d + 1] = init[k]
    with torch.inference_mode():
        emb = lm.text_emb(seq[None, 0]) + sum(lm.emb[k](seq[None, k + 1]) for k in range(16))
    cache = torch.full((1, 17, 4), -1, dtype=torch.long)
    for c in range(v - 3, v + 1):
        for k, d in enumerate(lm.delays):
            if c - d < cols.shape[1]:
                cache[0, k, c % 4] = int(cols[k, c]) if c < v else int(cols[k, min(c, v)])
    torch.save({"embeddings": emb[0][:, None, None, :].clone(), "cache": cache}, path)


def test_personaplex_preset_primes_like_the_wav(make_config, voice_dir: Path,
                                                wav_engine: Engine, wav_run) -> None:
    _fork_preset(wav_engine, voice_dir / "FORK.pt")
    engine = load_engine(make_config(prompt_file="FORK.pt"))
    assert engine.voice.embeddings is not None
    assert engine.voice_frames == wav_engine.voice_frames
    engine.prime(PROMPT)
    logits, out = run_frames(engine, 50, seed=4)
    torch.testing.assert_close(logits, wav_run[0], atol=1e-4, rtol=1e-4)
    assert torch.equal(out, wav_run[1])
    # The reference path replays the preset's embeddings one step at a time: same state.
    engine.prime_reference(PROMPT)
    logits, out = run_frames(engine, 50, seed=4)
    torch.testing.assert_close(logits, wav_run[0], atol=1e-4, rtol=1e-4)
    assert torch.equal(out, wav_run[1])


def test_preset_for_another_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "NATF0.pt"
    torch.save({"embeddings": torch.zeros(9, 1, 1, 4096), "cache": torch.zeros(1, 17, 4)}, path)
    with pytest.raises(InputError, match="dim 4096, the model has 128"):
        load_voice_file(path, model_dim=128)
