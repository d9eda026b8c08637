"""Persona priming: the exact forced token sequence, and fast re-injection (snapshot restore +
batched prefill) against the plain per-step replay."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from entropi.core.constants import TEXT_PAD
from entropi.core.errors import InputError
from entropi.engine.engine import Engine, load_engine
from entropi.engine.prompts import SILENCE_CODES, SINE_CODES

from .conftest import PROMPT
from .helpers import fed_tokens, run_frames

OTHER = "The user talked about planning a trip to the mountains next week with a friend."


@pytest.fixture(scope="module")
def engine(make_config) -> Engine:
    return load_engine(make_config())


def expected_inputs(engine: Engine, prompt: str) -> np.ndarray:
    """The table from the facts file, built here independently of the engine's own code:
    per frame, then shifted by each stream's acoustic delay (LMGen's initial token first)."""
    ids = engine.tokenizer.encode(f"<system> {prompt} <system>")
    v = engine.voice_frames
    voice = engine.voice.codes
    text = [TEXT_PAD] * (v + 6) + ids + [TEXT_PAD] * 6
    n = len(text)
    agent = [list(voice[:, f]) if f < v else list(SILENCE_CODES) for f in range(n)]
    frames = np.array([[text[f], *agent[f], *SINE_CODES] for f in range(n)]).T  # [17, n]
    init = engine.lm._get_initial_token()[0, :, 0].numpy()
    out = np.empty_like(frames)
    for k, d in enumerate(engine.lm.delays):
        out[k] = [init[k] if c <= d else frames[k, c - d] for c in range(n)]
    return out


def test_system_prompt_is_wrapped_in_system_tags(engine: Engine) -> None:
    ids = engine.prompt_ids(PROMPT)
    tag = engine.tokenizer.sp.piece_to_id("<system>")
    assert tag > 3 and [i for i, t in enumerate(ids) if t == tag] == [1, len(ids) - 1]
    assert engine.tokenizer.sp.decode(ids) == f"<system> {PROMPT} <system>"


def test_reference_feeds_every_phase_in_order(engine: Engine) -> None:
    expected = expected_inputs(engine, PROMPT)
    with fed_tokens(engine) as calls:
        stats = engine.prime_reference(PROMPT)
    fed = np.concatenate(calls, axis=1)
    assert all(c.shape[1] == 1 for c in calls)  # one step per frame
    assert stats.passes == expected.shape[1] == len(calls)
    np.testing.assert_array_equal(fed, expected)
    # The first live step sees the last forced frame's delayed (acoustic) codebooks, and the
    # model's own text and semantic token in place of forced ones.
    with fed_tokens(engine) as calls:
        run_frames(engine, 1)
    delayed = [k for k, d in enumerate(engine.lm.delays[1:9], start=1) if d > 0]
    assert [int(calls[0][k, 0]) for k in delayed] == [SILENCE_CODES[k - 1] for k in delayed]


def test_fast_prime_feeds_text_phase_in_few_passes(engine: Engine) -> None:
    expected = expected_inputs(engine, PROMPT)
    start = engine.voice_frames + 6  # the snapshot holds everything before
    with fed_tokens(engine) as calls:
        stats = engine.prime(PROMPT)
    fed = np.concatenate(calls, axis=1)
    np.testing.assert_array_equal(fed, expected[:, start:])
    assert stats.tokens == len(engine.prompt_ids(PROMPT))
    assert stats.passes == len(calls) <= 8 < stats.tokens
    assert max(c.shape[1] for c in calls) > 1


def _lmgen_state(engine: Engine) -> tuple:
    s = engine.lm_gen._streaming_state
    kv = [layer.self_attn._streaming_state.kv_cache for layer in engine.lm.transformer.layers]
    return (s.cache.clone(), int(s.offsets), s.offset_cpu,
            [int(k.end_offset) for k in kv],
            # slots past end_offset are masked out of attention: only the written ones count
            [k.cache[..., : int(k.end_offset), :].clone() for k in kv])


def test_fast_reinjection_matches_per_step_replay_over_windows(engine: Engine) -> None:
    engine.prime_reference(PROMPT)
    ref_state = _lmgen_state(engine)
    ref_logits, ref_out = run_frames(engine, 60, seed=1)
    # Several windows with other prompts and conversation in between: restores must not drift,
    # even after a window long enough to wrap the 400-slot KV ring (the snapshot keeps only
    # the ring's written slots).
    for i, (prompt, frames) in enumerate([(OTHER, 30), (PROMPT, 320), (OTHER, 40)]):
        engine.prime(prompt)
        run_frames(engine, frames, seed=10 + i)
        if frames == 320:
            kv = engine.lm.transformer.layers[0].self_attn._streaming_state.kv_cache
            assert int(kv.end_offset) > kv.capacity
    engine.prime(PROMPT)
    cache, offsets, offset_cpu, ends, kv = _lmgen_state(engine)
    assert torch.equal(cache, ref_state[0])  # LMGen's delay cache, exactly as stepping left it
    assert (offsets, offset_cpu, ends) == ref_state[1:4]
    for a, b in zip(kv, ref_state[4], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    logits, out = run_frames(engine, 60, seed=1)
    torch.testing.assert_close(logits, ref_logits, atol=1e-4, rtol=1e-4)
    assert torch.equal(out, ref_out)
    # The model really says different things (its text stream may just listen: PAD).
    assert len(set(out[:, 1].tolist())) > 1 and logits.std(0).max() > 0.1


def test_reference_after_fast_is_unchanged(engine: Engine) -> None:
    """The reference resets everything: a fast window before it leaves no trace."""
    engine.prime(OTHER)
    run_frames(engine, 20, seed=5)
    engine.prime_reference(OTHER)
    a = run_frames(engine, 40, seed=6)
    engine.prime_reference(OTHER)
    b = run_frames(engine, 40, seed=6)
    torch.testing.assert_close(a[0], b[0], atol=1e-5, rtol=1e-5)
    assert torch.equal(a[1], b[1])


def test_step_pcm_frame(engine: Engine) -> None:
    engine.prime(PROMPT)
    rng = np.random.default_rng(2)
    outs = [engine.step((0.1 * rng.standard_normal(1920)).astype(np.float32))
            for _ in range(5)]
    for out in outs:
        assert out.pcm.shape == (1920,) and out.pcm.dtype == np.float32
        assert np.isfinite(out.pcm).all()
        assert out.text == engine.tokenizer.piece(out.token)
        assert (out.text is None) == (out.token in (0, 1, 2, 3))
    assert any(np.abs(o.pcm).max() > 0 for o in outs)
    with pytest.raises(InputError, match="expected 1920 samples"):
        engine.step(np.zeros(100, dtype=np.float32))


def test_prompt_longer_than_the_context_is_refused(engine: Engine) -> None:
    with pytest.raises(InputError, match=r"does not fit runtime\.context_window \(400\)"):
        engine.prime(" ".join(["river"] * 400))


def test_chunk_plan_uses_fixed_sizes_within_the_ring() -> None:
    from entropi.engine.prefill import CHUNK_SIZES, chunk_plan

    plan = chunk_plan(159, context=750)
    assert sum(plan) == 159 and set(plan) <= set(CHUNK_SIZES) and len(plan) == 6
    small = chunk_plan(300, context=100)
    assert sum(small) == 300 and max(small) <= 100


def test_sampling_seed_makes_each_window_reproducible(make_config) -> None:
    engine = load_engine(make_config(sampling="seed: 5"))  # sampling on (the default)
    assert engine.lm_gen.use_sampling
    engine.prime(PROMPT)
    first = run_frames(engine, 30, seed=3)[1]
    engine.prime(PROMPT)
    again = run_frames(engine, 30, seed=3)[1]
    assert torch.equal(first, again)
