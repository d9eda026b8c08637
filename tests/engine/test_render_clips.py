"""Thinking clips rendered by the tiny PersonaPlex: forced text, bounds, level, live state."""

from __future__ import annotations

import numpy as np
import pytest

from entropi.audio.levels import active_dbfs
from entropi.audio.wav import read_wav
from entropi.clips.cache import cache_folder, read_meta
from entropi.clips.lines import plan_line, plan_lines
from entropi.clips.render import render_clips, render_to_cache
from entropi.config import Config
from entropi.core.constants import FRAME_SIZE, TEXT_SPECIAL_IDS
from entropi.core.errors import InputError
from entropi.engine.engine import Engine, load_engine
from entropi.engine.takes import preserved_state, render_take

LINES = ["Let me think.", "One moment."]


def _with_voice(cfg: Config, **voice) -> Config:
    return cfg.model_copy(update={"voice": cfg.voice.model_copy(update=voice)})


@pytest.fixture(scope="module")
def sampled_cfg(make_config, tmp_path_factory) -> Config:
    cfg = make_config(sampling="seed: 3")
    render = cfg.voice.render.model_copy(update={"takes": 2})
    return _with_voice(cfg, thinking_lines=LINES, render=render,
                       rendered_clips_dir=tmp_path_factory.mktemp("rendered"))


@pytest.fixture(scope="module")
def engine(sampled_cfg: Config) -> Engine:
    return load_engine(sampled_cfg)


def test_forced_tokens_drive_text_stream_and_depformer(engine: Engine, sampled_cfg) -> None:
    plan = plan_line(engine.tokenizer, 0, "Let me think about that.", sampled_cfg.voice)
    depformer_text: list[int] = []
    hook = engine.lm.depformer_text_emb.register_forward_hook(
        lambda _m, args, _o: depformer_text.append(int(args[0].reshape(-1)[0])))
    try:
        with preserved_state(engine):
            pcm, tokens = render_take(engine, plan.text, "You are Ada.", seed=5)
    finally:
        hook.remove()
    # The text stream shows each step's token one frame later: exactly the schedule.
    assert tokens[1:] == list(plan.text[:-1])
    assert [t for t in tokens if t not in TEXT_SPECIAL_IDS] == list(plan.token_ids)
    assert engine.tokenizer.sp.decode(list(plan.token_ids)) == "Let me think about that."
    # The depformer (which samples the agent's audio) was conditioned on the forced text
    # (the one call before is the prime's last, free step).
    assert depformer_text[1:] == list(plan.text)
    assert pcm.shape == (len(plan.text) * FRAME_SIZE,) and float(np.abs(pcm).max()) > 0


def test_rendered_clips_fit_bounds_fade_and_match_level(engine: Engine, sampled_cfg) -> None:
    stats = render_to_cache(engine, sampled_cfg)
    assert (stats.clips, stats.takes) == (2, 4) and stats.seconds > 0
    folder = cache_folder(sampled_cfg)
    meta = read_meta(folder)
    assert meta is not None and [c["line"] for c in meta["clips"]] == LINES
    v = sampled_cfg.voice
    for clip in meta["clips"]:
        pcm = read_wav(folder / clip["file"])
        seconds = pcm.size / 24_000
        assert v.min_clip_seconds <= seconds <= v.max_clip_seconds
        assert abs(seconds - clip["duration_s"]) < 1e-3
        assert abs(active_dbfs(pcm) - v.clip_level_dbfs) < 1.0
        assert abs(pcm[0]) < 1e-3 and abs(pcm[-1]) < 1e-3  # faded: no click
        assert abs(float(pcm.mean())) < 0.01  # the tiny decoder's DC offset is removed
        assert len(clip["takes"]) == 2 and clip["seed"] in [t["seed"] for t in clip["takes"]]


def _conversation(engine: Engine, frames: int, render_at: int | None, cfg: Config) -> tuple:
    rng = np.random.default_rng(11)
    engine.prime("You are Ada, a calm companion.")
    tokens, audio = [], []
    for i in range(frames):
        if i == render_at:  # sampling is on: a render that left the RNG moved would show
            with preserved_state(engine):
                render_take(engine, plan_lines(engine.tokenizer, cfg.voice)[0].text, "Other.", 9)
        out = engine.step((0.05 * rng.standard_normal(FRAME_SIZE)).astype(np.float32))
        tokens.append(out.token)
        audio.append(out.pcm)
    return tokens, np.concatenate(audio)


def test_rendering_mid_conversation_leaves_live_state_unchanged(engine: Engine,
                                                                 sampled_cfg) -> None:
    plain_tokens, plain_audio = _conversation(engine, 12, None, sampled_cfg)
    tokens, audio = _conversation(engine, 12, 6, sampled_cfg)
    assert tokens == plain_tokens
    np.testing.assert_array_equal(audio, plain_audio)


def test_too_long_line_is_refused_naming_it(engine: Engine, sampled_cfg) -> None:
    long = "Hmm, let me think about that for a moment, it is an interesting question."
    cfg = _with_voice(sampled_cfg, thinking_lines=["One moment.", long])
    with pytest.raises(InputError) as err:
        plan_lines(engine.tokenizer, cfg.voice)
    assert err.value.message.startswith(f'voice.thinking_lines[1] "{long}": needs about')
    assert "over voice.max_clip_seconds (3 s)" in err.value.message


def test_overlong_take_is_cut_to_the_limit(engine: Engine, sampled_cfg) -> None:
    # 1.68 s of words fit 2 s, but the tiny model's audio never falls silent, so the take
    # keeps its 0.8 s tail: no take fits, and the shortest is cut rather than failing.
    render = sampled_cfg.voice.render.model_copy(update={"takes": 1})
    cfg = _with_voice(sampled_cfg, thinking_lines=["Give me a second."], max_clip_seconds=2.0,
                      render=render)
    plans = plan_lines(engine.tokenizer, cfg.voice)
    assert plans[0].expected_seconds <= 2.0
    [clip], _ = render_clips(engine, cfg, plans)
    assert clip.chosen.seconds > 2.0 and clip.pcm.size == 2 * 24_000
    assert abs(clip.pcm[-1]) < 1e-3
