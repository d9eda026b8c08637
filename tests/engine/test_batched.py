"""The batched engine: each slot of a B = 3 engine says exactly what a single-stream engine fed
the same audio says (greedy), with ragged ticks, a neighbour re-injecting mid-stream, and
through the asyncio SlotPool."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from entropi.core.constants import FRAME_SIZE, TEXT_PAD
from entropi.core.errors import InputError
from entropi.engine.batched import BatchedEngine
from entropi.engine.engine import Engine, FrameOut, load_engine
from entropi.engine.prompts import SILENCE_CODES
from entropi.engine.slots import SlotPool

PROMPTS = ("You are Ada, a warm companion who listens closely.",
           "You are Bo, who loves the sea and talks about boats.",
           "You are Cy. Speak briefly.")
AGAIN = "The user planned a trip to the mountains with a friend next week."
FRAMES = 16


@pytest.fixture(scope="module")
def single(make_config) -> Engine:
    return load_engine(make_config())


@pytest.fixture(scope="module")
def batched(make_config) -> BatchedEngine:
    b = BatchedEngine(load_engine(make_config()), 3)
    b.warm_up()
    return b


def with_slots(cfg, slots: int):
    return cfg.model_copy(update={"runtime": cfg.runtime.model_copy(
        update={"max_conversations": slots})})


def audio(seed: int, n: int = FRAMES) -> list[np.ndarray]:
    """A different voice-like signal per caller: noise bursts over a tone."""
    rng = np.random.default_rng(seed)
    t = np.arange(n * FRAME_SIZE) / 24_000
    pcm = 0.2 * np.sin(2 * np.pi * (150 + 40 * seed) * t) * (rng.random(t.size) > 0.3)
    pcm = (pcm + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    return [pcm[i * FRAME_SIZE:(i + 1) * FRAME_SIZE] for i in range(n)]


def reference(single: Engine, prompt: str, frames: list[np.ndarray]) -> list[FrameOut]:
    single.prime(prompt)
    return [single.step(pcm) for pcm in frames]


def same(got: list[FrameOut], want: list[FrameOut]) -> None:
    assert [o.token for o in got] == [o.token for o in want]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.pcm, w.pcm, atol=1e-4)


def test_each_slot_matches_single_stream_with_ragged_ticks(single, batched) -> None:
    feeds = [audio(k) for k in range(3)]
    want = [reference(single, PROMPTS[k], feeds[k]) for k in range(3)]
    for a, b in ((0, 1), (1, 2), (0, 2)):  # the slots say different things
        assert not np.allclose(want[a][-1].pcm, want[b][-1].pcm, atol=1e-3)
    for k in range(3):
        batched.prime(k, PROMPTS[k])
    got: list[list[FrameOut]] = [[], [], []]
    tick = 0
    while any(len(g) < FRAMES for g in got):
        # Slot 1 skips every third tick, slot 2 starts late: masked rows must not move.
        due = {k: feeds[k][len(got[k])] for k in range(3) if len(got[k]) < FRAMES
               and not (k == 1 and tick % 3 == 0) and not (k == 2 and tick < 4)}
        for k, out in batched.step(due).items():
            got[k].append(out)
        tick += 1
    for k in range(3):
        same(got[k], want[k])


def test_a_slot_reinjecting_leaves_the_others_untouched(single, batched) -> None:
    feeds = [audio(10 + k) for k in range(3)]
    want = [reference(single, PROMPTS[k], feeds[k]) for k in range(2)]
    half = FRAMES // 2
    single.prime(PROMPTS[2])
    for pcm in feeds[2][:half]:
        single.step(pcm)
    want.append(reference(single, AGAIN, feeds[2][half:]))  # re-primed mid-stream
    for k in range(3):
        batched.prime(k, PROMPTS[k])
    got: list[list[FrameOut]] = [[], [], []]
    for i in range(FRAMES):
        if i == half:
            batched.prime(2, AGAIN)  # between two ticks, while slots 0 and 1 talk on
            got[2] = []
        for k, out in batched.step({k: feeds[k][i] for k in range(3)}).items():
            got[k].append(out)
    for k in range(3):
        same(got[k], want[k])


def test_catch_up_forces_the_agent_silent_in_its_slot_only(single, batched) -> None:
    feeds = [audio(20 + k) for k in range(2)]
    want = reference(single, PROMPTS[0], feeds[0])
    for k in range(2):
        batched.prime(k, PROMPTS[k])
    state = batched.lm_gen._streaming_state
    before = state.offsets.clone()
    assert batched.catch_up(1, audio(30, 3)) == 3
    assert state.offsets[0] == before[0] and state.offsets[1] == before[1] + 3
    ct = state.cache.shape[2]
    col = state.cache[1, :, int(state.offsets[1]) % ct]
    assert int(col[0]) == TEXT_PAD and col[1:9].tolist() == list(SILENCE_CODES)
    got = [batched.step({0: pcm, 1: feeds[1][i]})[0] for i, pcm in enumerate(feeds[0])]
    same(got, want)


def test_bad_frames_are_one_clear_error(batched) -> None:
    batched.prime(0, PROMPTS[0])
    with pytest.raises(InputError, match="slot 0: expected 1920 samples"):
        batched.step({0: np.zeros(100, np.float32)})
    batched.release(1)
    with pytest.raises(RuntimeError, match="slot 1 stepped before prime"):
        batched.step({1: np.zeros(FRAME_SIZE, np.float32)})


def test_slot_pool_steps_concurrent_conversations_together(make_config, single) -> None:
    feeds = [audio(40 + k, 10) for k in range(3)]
    want = [reference(single, PROMPTS[k], feeds[k]) for k in range(3)]
    cfg = with_slots(make_config(), 3)

    async def talk(slot, k: int, delay: float) -> list[FrameOut]:
        await slot.prime(PROMPTS[k])
        outs = []
        for pcm in feeds[k]:
            outs.append(await slot.step(pcm))
            await asyncio.sleep(delay)  # callers at their own pace
        return outs

    async def main() -> tuple[list[list[FrameOut]], SlotPool]:
        pool = SlotPool(cfg)
        await pool.start()
        try:
            slots = [pool.acquire() for _ in range(3)]
            assert None not in slots and pool.acquire() is None  # B = 3: the fourth waits
            assert slots[0].engine.voice_frames == single.voice_frames
            outs = await asyncio.gather(*(talk(s, k, 0.001 * k) for k, s in enumerate(slots)))
            assert pool.reinjections == 3
            # A silent (slow) caller holds its slot but never holds up another's frames.
            await slots[1].prime(PROMPTS[1])
            before = pool.ticks
            alone = [await slots[0].step(pcm) for pcm in feeds[0][:4]]
            assert pool.ticks - before == 4 and list(pool.batch_sizes)[-4:] == [1] * 4
            assert all(o.pcm.shape == (FRAME_SIZE,) for o in alone)
            pool.release(slots[1])
            assert pool.acquire() is slots[1]
            with pytest.raises(InputError, match="expected 1920 samples"):
                await slots[0].step(np.zeros(10, np.float32))
            return list(outs), pool
        finally:
            await pool.close()

    got, pool = asyncio.run(main())
    for k in range(3):
        same(got[k], want[k])
    assert max(pool.batch_sizes) > 1  # frames of different callers shared a tick
    assert pool.ticks < 30


def test_reinjections_at_once_let_live_frames_go_between_them(make_config) -> None:
    """Three slots re-inject together while slot 0 talks: never two primes in a row on the
    engine thread while slot 0 has a frame waiting."""
    feed = audio(70, 12)

    async def main() -> list[str]:
        pool = SlotPool(with_slots(make_config(), 4))
        await pool.start()
        order: list[str] = []
        batched = pool.batched
        step, prime = batched.step, batched.prime
        batched.step = lambda frames: (order.append("tick"), step(frames))[1]  # type: ignore
        batched.prime = lambda i, p: (order.append("prime"), prime(i, p))[1]  # type: ignore
        try:
            talker, *others = [pool.acquire() for _ in range(4)]
            await talker.prime(PROMPTS[0])

            async def talk() -> None:
                for pcm in feed:
                    await talker.step(pcm)

            async def reinject() -> None:
                await asyncio.sleep(0.05)  # while the talker is mid-stream
                await asyncio.gather(*(s.prime(PROMPTS[k]) for k, s in enumerate(others)))

            await asyncio.gather(talk(), reinject())
        finally:
            await pool.close()
        return order[1:]  # after the talker's own prime

    order = asyncio.run(main())
    assert order.count("prime") == 3 and order.count("tick") == len(feed)
    first, last = order.index("prime"), len(order) - 1 - order[::-1].index("prime")
    assert "prime, prime" not in ", ".join(order[first:last + 1]), order


def test_batch_one_matches_single_stream(make_config, single) -> None:
    b = BatchedEngine(load_engine(make_config()), 1)
    feed = audio(50, 8)
    want = reference(single, PROMPTS[1], feed)
    b.prime(0, PROMPTS[1])
    same([b.step({0: pcm})[0] for pcm in feed], want)
    assert b.memory_stats()["state_bytes"] > 0
    with torch.inference_mode():
        assert b.on_single(lambda e: e.voice_frames, b.single) == single.voice_frames


def test_each_slot_keeps_its_own_voice(single, batched, tmp_path) -> None:
    other = tmp_path / "other.wav"
    subprocess.run(["espeak-ng", "-v", "en-gb", "-s", "140", "-p", "70", "-w", str(other),
                    "A different speaker, higher and slower."], check=True)
    configured = Path(single.voice_key)
    feeds = [audio(60 + k, 8) for k in range(2)]
    single.use_voice(other)
    want_other = reference(single, PROMPTS[0], feeds[0])
    single.use_voice(configured)
    want_default = reference(single, PROMPTS[1], feeds[1])
    assert not np.allclose(want_other[-1].pcm, want_default[-1].pcm, atol=1e-3)
    switch = batched.use_voice(0, other)
    assert switch.name == "other.wav" and batched.voice_frames[0] == switch.frames
    batched.use_voice(1, configured)
    batched.prime(1, PROMPTS[1])
    batched.prime(0, PROMPTS[0])  # after slot 1: each prime restores its own slot's voice
    got: list[list[FrameOut]] = [[], []]
    for i in range(8):
        for k, out in batched.step({0: feeds[0][i], 1: feeds[1][i]}).items():
            got[k].append(out)
    same(got[0], want_other)
    same(got[1], want_default)
    batched.use_voice(0, configured)


def test_memory_estimate_counts_a_kv_cache_per_slot_and_the_scratch() -> None:
    from entropi.engine.vram import estimate_vram_gb

    one = estimate_vram_gb("none", 3000)
    many = estimate_vram_gb("none", 3000, conversations=32)
    assert many["kv_cache_gb"] == pytest.approx(33 * one["kv_cache_gb"], rel=0.01)
    assert many["weights_gb"] == one["weights_gb"] and many["total_gb"] < 80  # fits an H100


def test_sampled_slot_does_not_depend_on_its_neighbours(make_config) -> None:
    """With sampling on, slot 0 says the same whether its neighbours are idle or talking (each
    slot draws from its own generator, seeded at prime); shared sampling would not."""
    def config(seed: int):
        return make_config(sampling=f"use_sampling: true\n  seed: {seed}\n  audio_topk: 20\n"
                                    "  text_topk: 10")
    feeds = [audio(k) for k in range(3)]

    def slot0(cfg, busy: bool, per_slot: bool = True) -> list[float]:
        """Slot 0's sampled output for its 16 frames; ``busy``: the neighbours talk on every
        tick, slot 0 sits out every fourth tick, and slot 1 re-injects (re-seeding) mid-way."""
        b = BatchedEngine(load_engine(cfg), 3)
        if not per_slot:  # the broken case: every row from torch's shared generator
            b._sampling = False
        for k in range(3):
            b.prime(k, PROMPTS[k])
        torch.manual_seed(123)
        out: list[float] = []
        tick = 0
        while len(out) < FRAMES * 21:
            due = {} if busy and tick % 4 == 1 else {0: feeds[0][len(out) // 21]}
            if busy:
                due |= {1: feeds[1][tick % FRAMES], 2: feeds[2][tick % FRAMES]}
                if tick == 6:
                    b.prime(1, AGAIN)
            frame = b.step(due).get(0)
            if frame is not None:
                out += [frame.token, *np.round(frame.pcm[::97], 5).tolist()]  # 1 + 20 values
            tick += 1
        return out

    seven = config(7)
    alone = slot0(seven, busy=False)
    assert slot0(seven, busy=True) == alone
    assert slot0(config(8), busy=False) != alone  # the slot's seed decides its samples
    assert slot0(seven, busy=True, per_slot=False) != slot0(seven, busy=False, per_slot=False)
