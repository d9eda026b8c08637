"""Catch-up: user audio heard over a thinking clip is stepped into the model after priming,
batched, with the agent forced silent; exactly what stepping it frame by frame would do."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from entropi.config import context_budget
from entropi.core.constants import FRAME_SIZE, TEXT_PAD
from entropi.core.errors import InputError
from entropi.engine.engine import Engine, load_engine
from entropi.engine.prefill import chunk_plan
from entropi.engine.prompts import SILENCE_CODES

from .conftest import PROMPT
from .helpers import run_frames
from .test_prime import _lmgen_state


@pytest.fixture(scope="module")
def engine(make_config) -> Engine:
    return load_engine(make_config())


def _speech(n: int, seed: int = 0) -> list[np.ndarray]:
    """Loud, varied frames (a voiced-ish sweep plus noise) so Mimi codes change per frame."""
    rng = np.random.default_rng(seed)
    t = np.arange(n * FRAME_SIZE) / 24000
    pcm = 0.3 * np.sin(2 * np.pi * (150 + 80 * np.sin(3 * t)) * t) \
        + 0.05 * rng.standard_normal(t.size)
    return list(pcm.astype(np.float32).reshape(n, FRAME_SIZE))


def _stepped_one_by_one(engine: Engine, frames: list[np.ndarray]) -> None:
    """The plain reading: per frame, Mimi-encode it, force the agent's column (text PAD,
    audio SILENCE) into LMGen's cache, and take one LMGen step (the depformer's audio is
    replaced, as the next forced column overwrites it; the last step runs for real); then
    the next column's delayed codebooks hold the forced SILENCE frame, as after priming."""
    gen = engine.lm_gen
    state = gen._streaming_state
    ct, n_audio = state.cache.shape[2], engine.lm.dep_q
    forced = torch.tensor([TEXT_PAD, *SILENCE_CODES])
    dummy = torch.zeros(1, n_audio, 1, dtype=torch.long)
    with torch.inference_mode():
        for i, pcm in enumerate(frames):
            engine._pcm_in.view(-1).copy_(torch.from_numpy(pcm))
            codes = engine._encode(engine._pcm_in)[:, :8].clone()
            state.cache[0, : 1 + n_audio, state.offset_cpu % ct] = forced
            gen.step(codes, depformer_replace_tokens=None if i == len(frames) - 1 else dummy)
        for k in range(1, 1 + n_audio):
            if engine.lm.delays[k] > 0:
                state.cache[0, k, state.offset_cpu % ct] = forced[k]


@pytest.mark.parametrize("n", [1, 2, 37])
def test_catch_up_matches_stepping_each_frame(engine: Engine, n: int) -> None:
    frames = _speech(n, seed=n)
    engine.prime(PROMPT)
    offset = engine.lm_gen._streaming_state.offset_cpu
    _stepped_one_by_one(engine, frames)
    ref_state = _lmgen_state(engine)
    ref_logits, ref_out = run_frames(engine, 20, seed=4)

    engine.prime(PROMPT)
    stats = engine.catch_up(frames)
    assert (stats.frames, stats.passes) == (n, len(chunk_plan(n - 1, 400)) + 1)
    cache, offsets, offset_cpu, ends, kv = _lmgen_state(engine)
    assert offset_cpu == offset + n
    assert torch.equal(cache, ref_state[0])
    assert (offsets, offset_cpu, ends) == ref_state[1:4]
    for a, b in zip(kv, ref_state[4], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    logits, out = run_frames(engine, 20, seed=4)
    torch.testing.assert_close(logits, ref_logits, atol=1e-4, rtol=1e-4)
    assert torch.equal(out, ref_out)


def test_catch_up_changes_what_the_model_says_next(engine: Engine) -> None:
    engine.prime(PROMPT)
    plain = run_frames(engine, 10, seed=4)[0]
    engine.prime(PROMPT)
    engine.catch_up(_speech(20))
    heard = run_frames(engine, 10, seed=4)[0]
    assert (plain - heard).abs().max() > 1e-3


def test_catch_up_keeps_the_newest_frames_within_the_room(engine: Engine) -> None:
    engine.prime(PROMPT)
    room = engine.catch_up_room()
    budget = context_budget(engine.cfg, engine.voice_frames)  # the spare room is the limit
    assert 0 < room == min(budget.context_window - budget.needed,
                           math.ceil(engine.cfg.window.max_catch_up_seconds * 12.5))
    frames = _speech(room + 5)
    first = engine.catch_up(frames[:3])
    rest = engine.catch_up(frames[3:])
    assert (first.frames, rest.frames) == (3, room - 3)
    assert engine.catch_up(frames).frames == 0  # no room left until the next prime
    engine.prime(PROMPT)
    assert engine.catch_up_room() == room
    with pytest.raises(InputError, match=r"engine\.catch_up: expected 1920 samples"):
        engine.catch_up([np.zeros(100, np.float32)])


def test_warm_up_measured_the_catch_up_speed(make_config) -> None:
    engine = load_engine(make_config())
    assert engine.catch_up_factor is not None and engine.catch_up_factor > 0
    assert engine.catch_up_room() > 0  # the measurement left no frames in the context
