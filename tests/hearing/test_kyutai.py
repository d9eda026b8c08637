"""Kyutai STT on a tiny random STT checkpoint sharing the engine's Mimi encode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from entropi.config import AsrSection, ModelSection
from entropi.core.constants import FRAME_SIZE
from entropi.core.errors import ModelError
from entropi.engine.engine import load_engine
from entropi.engine.stt import STT_CODEBOOKS, TINY_STT_DELAY, encode_codebooks
from entropi.hearing.kyutai import open_kyutai
from tests.engine.conftest import (  # noqa: F401 (fixtures)
    cache_dir,
    make_config,
    tiny,
    voice_dir,
)


def _speech(frames: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(frames * FRAME_SIZE) / 24000
    pcm = (0.3 * np.sin(2 * np.pi * 180 * t * (1 + 0.3 * np.sin(3 * t)))
           + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    return [pcm[i * FRAME_SIZE:(i + 1) * FRAME_SIZE] for i in range(frames)]


def _kyutai(cfg):
    asr = cfg.asr.model_copy(
        update={"backend": "kyutai", "kyutai_source": "tiny", "device": "cpu"})
    return cfg.model_copy(update={"asr": asr})


@pytest.fixture(scope="module")
def engines(make_config):  # noqa: F811
    plain_cfg = make_config()
    stt_cfg = _kyutai(plain_cfg)
    plain = load_engine(plain_cfg)
    shared = load_engine(stt_cfg)
    transcriber = open_kyutai(stt_cfg.asr, stt_cfg.model)
    shared.attach_stt(transcriber.stream)
    return plain, shared, transcriber


def test_prefix_of_32_codebook_encode_is_the_8_codebook_encode(engines):
    plain, shared, _ = engines
    assert shared.mimi.quantizer.total_codebooks == STT_CODEBOOKS
    with torch.inference_mode():
        plain.mimi.reset_streaming()  # both engines' Mimis stream forever: start them equal
        shared.mimi.reset_streaming()
        for pcm in _speech(6):
            x = torch.from_numpy(pcm).view(1, 1, -1)
            eight = plain.mimi.encode(x)
            wide = encode_codebooks(shared.mimi, x, STT_CODEBOOKS)
            assert eight.shape[1] == 8 and wide.shape[1] == STT_CODEBOOKS
            assert torch.equal(wide[:, :8], eight)
            assert len(set(wide[0, 8:, 0].tolist())) > 1  # the extra codebooks are real codes
    assert shared.mimi.quantizer.rvq_rest.n_q == 7  # left at PersonaPlex's 8 for everyone


def test_personaplex_unchanged_and_text_after_delay(engines):
    plain, shared, transcriber = engines
    prompt = "You are a tester."
    plain.prime(prompt)
    shared.prime(prompt)
    timeline = transcriber.stream.timeline
    start = timeline.frames
    tokens_plain, tokens_shared, pcm_diff = [], [], 0.0
    stt_tokens = []
    for pcm in _speech(24, seed=1):
        a, b = plain.step(pcm), shared.step(pcm)
        tokens_plain.append(a.token)
        tokens_shared.append(b.token)
        pcm_diff = max(pcm_diff, float(np.abs(a.pcm - b.pcm).max()))
        stt_tokens.append(transcriber.stream.last_token)
    assert tokens_plain == tokens_shared and pcm_diff == 0.0
    assert timeline.frames - start == 24
    assert transcriber.stream.has_head and 0.0 < timeline.end_of_turn < 1.0  # semantic VAD
    # The STT model's text lags the audio by its delay: nothing before frame 6.
    assert stt_tokens[:TINY_STT_DELAY] == [None] * TINY_STT_DELAY
    assert all(t is not None for t in stt_tokens[TINY_STT_DELAY:])
    words = transcriber.transcribe(np.zeros(16000, np.float32))  # waits ≤ wait_s (no frames)
    assert words and words == words.strip()
    assert transcriber.transcribe(np.zeros(16000, np.float32)) == ""  # taken once


def test_catch_up_steps_the_stt_on_the_same_encode(engines):
    """Talk over a thinking clip, caught up: the STT hears it too, and PersonaPlex gets the
    same first 8 codebooks as without the STT (same state, same next tokens)."""
    plain, shared, transcriber = engines
    plain.prime("You are a tester.")
    shared.prime("You are a tester.")
    start = transcriber.stream.timeline.frames
    a, b = plain.catch_up(_speech(10, seed=2)), shared.catch_up(_speech(10, seed=2))
    assert a.frames == b.frames == 10
    assert transcriber.stream.timeline.frames - start == 10
    after = _speech(6, seed=3)
    assert [plain.step(p).token for p in after] == [shared.step(p).token for p in after]


def test_bad_kyutai_load_is_one_line(tmp_path):
    asr = AsrSection(backend="kyutai", kyutai_repo="nobody/missing-stt", device="cpu")
    with pytest.raises(ModelError) as err:
        open_kyutai(asr, ModelSection(cache_dir=tmp_path))
    msg = str(err.value)
    assert "asr.kyutai_repo 'nobody/missing-stt'" in msg and "\n" not in msg
