"""Feeding forced prefix positions into a streaming LM: batched (fast) or one step at a time.

Forced positions need no sampling and no depformer, only the main transformer's KV caches, so
``feed_batched`` runs ``lm.forward_text`` over many positions per call, split into a few FIXED
chunk sizes (a later CUDA path graphs one call per size at warm-up, so no window handover pays
a capture). ``sync_lmgen`` then leaves LMGen's own state (``offsets``, ``offset_cpu`` and the
delay ``cache``) as stepping would have. ``step_forced`` is the plain per-step reference: real
``LMGen.step`` calls with the forced tokens written into LMGen's cache before each step.

``feed_catch_up`` is the mirror of the prefix for live audio the model did not step (the
user talking over a thinking clip): the user stream carries the heard codes, the agent's
text is forced to PAD and its audio to SILENCE, batched the same way. It touches one
LMGen's state only, so a batched multi-slot engine can run it per slot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from entropi.core.constants import TEXT_PAD
from entropi.engine.prompts import SILENCE_CODES

CHUNK_SIZES = (256, 128, 64, 32, 16, 8, 4, 2, 1)  # binary: any length in <= 9 passes


def chunk_plan(length: int, context: int, sizes: Sequence[int] = CHUNK_SIZES) -> list[int]:
    """Greedy split of ``length`` into the fixed sizes (each within the KV ring capacity)."""
    usable = [s for s in sizes if s <= context] or [1]
    plan: list[int] = []
    for size in usable:
        while length >= size:
            plan.append(size)
            length -= size
    return plan


def _run_chunks(fn: Callable[[torch.Tensor], Any], seq: torch.Tensor, plan: list[int],
                runners: dict[int, Callable[[torch.Tensor], Any]] | None, time_dim: int) -> int:
    start = 0
    for size in plan:
        run = runners.get(size, fn) if runners else fn
        run(seq.narrow(time_dim, start, size))
        start += size
    return len(plan)


def feed_batched(lm: Any, columns: np.ndarray, start: int, stop: int,
                 runners: dict[int, Callable[[torch.Tensor], Any]] | None = None,
                 sizes: Sequence[int] = CHUNK_SIZES) -> int:
    """Run positions ``start…stop-1`` through the main transformer; returns the passes."""
    if stop <= start:
        return 0
    seq = torch.as_tensor(columns[:, start:stop], device=lm.device)[None].clone()
    # LMGen feeds its initial token where position <= delay; do the same here.
    initial = lm._get_initial_token()[0, :, 0]
    for k, d in enumerate(lm.delays):
        if start <= d:
            seq[0, k, : d - start + 1] = initial[k]
    return feed_columns(lm, seq, runners, sizes)


def feed_columns(lm: Any, seq: torch.Tensor,
                 runners: dict[int, Callable[[torch.Tensor], Any]] | None = None,
                 sizes: Sequence[int] = CHUNK_SIZES) -> int:
    """Run ready transformer inputs ``[1, 17, T]`` in the fixed chunk sizes; returns passes."""
    plan = chunk_plan(seq.shape[2], lm.context or seq.shape[2], sizes)
    return _run_chunks(lambda x: lm.forward_text(x), seq, plan, runners, time_dim=2)


def feed_embeddings(lm: Any, embeddings: torch.Tensor, batched: bool,
                    sizes: Sequence[int] = CHUNK_SIZES) -> int:
    """Positions given as input embeddings ``[T, dim]`` (a PersonaPlex preset)."""
    seq = embeddings.to(device=lm.device, dtype=lm.dtype)[None]

    def run(x: torch.Tensor) -> None:
        lm.transformer(x)  # out_norm/text_linear only matter for logits, not for the KV state

    plan = chunk_plan(seq.shape[1], lm.context or seq.shape[1], sizes) if batched else (
        [1] * seq.shape[1])
    return _run_chunks(run, seq, plan, None, time_dim=1)


def write_column(lm_gen: Any, columns: np.ndarray, pos: int, streams: slice) -> None:
    """Write the forced tokens of ``streams`` at position ``pos`` into LMGen's delay cache."""
    state = lm_gen._streaming_state
    ct = state.cache.shape[2]
    values = torch.as_tensor(columns[streams, pos], device=state.cache.device)
    state.cache[0, streams, pos % ct] = values


def sync_lmgen(lm_gen: Any, columns: np.ndarray, pos: int) -> None:
    """LMGen's state after forced steps ``0…pos-1``, as ``step_forced`` leaves it.

    Every column of the ring cache then holds its forced tokens (each column is rewritten
    with its forced values before the step that reads it, and the user stream is the same
    SINE code everywhere), ``offsets`` is ``pos`` and ``offset_cpu`` too.
    """
    state = lm_gen._streaming_state
    ct = state.cache.shape[2]
    assert pos >= ct, "sync needs at least one full ring of forced positions"
    for c in range(pos - ct + 1, pos + 1):
        state.cache[0, :, c % ct] = torch.as_tensor(columns[:, min(c, columns.shape[1] - 1)],
                                                    device=state.cache.device)
    state.offsets = torch.full_like(state.offsets, pos)
    state.offset_cpu = pos


def step_forced(lm_gen: Any, columns: np.ndarray, start: int, stop: int) -> int:
    """Plain reference: one ``LMGen.step`` per forced position ``start…stop-1``.

    Before step ``o`` its column's text and agent tokens are written into LMGen's cache (the
    user stream goes in as the step's input); the depformer is skipped with dummy tokens,
    which the next column overwrite replaces anyway.
    """
    n_audio = lm_gen.lm_model.dep_q
    dummy = torch.zeros(1, n_audio, 1, dtype=torch.long, device=lm_gen.lm_model.device)
    user_rows = slice(1 + n_audio, columns.shape[0])
    for o in range(start, stop):
        write_column(lm_gen, columns, o, slice(0, 1 + n_audio))
        user = torch.as_tensor(_user_frame(lm_gen, columns, o, user_rows),
                               device=dummy.device)[None, :, None]
        lm_gen.step(user, depformer_replace_tokens=dummy)
    return stop - start


def _user_frame(lm_gen: Any, columns: np.ndarray, o: int, rows: slice) -> np.ndarray:
    """The user frame given at step ``o`` (LMGen writes codebook k at column ``o + d_k``)."""
    delays = lm_gen.lm_model.delays[rows]
    return np.array([columns[rows.start + i, min(o + d, columns.shape[1] - 1)]
                     for i, d in enumerate(delays)])


def feed_catch_up(lm_gen: Any, user: torch.Tensor,
                  runners: dict[int, Callable[[torch.Tensor], Any]] | None = None,
                  sizes: Sequence[int] = CHUNK_SIZES) -> int:
    """Step the user's codes ``user [8, N]`` in from LMGen's current offset with the agent
    forced silent; returns the transformer passes.

    Positions ``p…p+N-2`` run batched; LMGen's delay cache is then left as per-step forcing
    would leave it, and position ``p+N-1`` is one real ``LMGen.step``: its sampled text and
    semantic token are the model's own next ones, as after priming (``Engine._finish``), and
    the delayed codebooks of the next column get the forced SILENCE codes.
    """
    lm = lm_gen.lm_model
    state = lm_gen._streaming_state
    ct = state.cache.shape[2]
    n_audio, delays = lm.dep_q, list(lm.delays)
    p, n = int(state.offset_cpu), int(user.shape[1])
    dev = state.cache.device
    forced = torch.tensor([TEXT_PAD, *SILENCE_CODES[:n_audio]], device=dev)
    # Columns p … p+N-1+max_delay as the transformer reads them: the agent rows forced; a
    # user row with delay d holds frame j-d at column p+j, and before that what the steps
    # before the catch-up wrote there (already in the ring).
    width = n + max(delays)
    cols = torch.empty(len(delays), width, dtype=torch.long, device=dev)
    cols[: 1 + n_audio] = forced[:, None]
    user = user.to(dev)
    for r in range(1 + n_audio, len(delays)):
        d = delays[r]
        cols[r, :d] = state.cache[0, r, [(p + j) % ct for j in range(d)]]
        cols[r, d:d + n] = user[r - 1 - n_audio]
        cols[r, d + n:] = user[r - 1 - n_audio, -1]  # never read
    passes = feed_columns(lm, cols[None, :, : n - 1], runners, sizes) if n > 1 else 0
    # The ring as the forced steps before ``last`` leave it (the agent's columns forced, the
    # user's codes where LMGen writes them); older columns have left the ring.
    last = p + n - 1
    for c in range(max(p, last - ct + 1), last + 1):
        state.cache[0, : 1 + n_audio, c % ct] = forced
    for r in range(1 + n_audio, len(delays)):
        for c in range(max(p, last - ct + 1), last + delays[r]):
            state.cache[0, r, c % ct] = cols[r, c - p]
    state.offsets = torch.full_like(state.offsets, last)
    state.offset_cpu = last
    lm_gen.step(user[:, -1].view(1, -1, 1))
    delayed = [k for k in range(1, 1 + n_audio) if delays[k] > 0]
    state.cache[0, delayed, (last + 1) % ct] = forced[delayed]
    return passes + 1
