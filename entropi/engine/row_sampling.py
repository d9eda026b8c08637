"""Per-slot sampling for the batched engine: each conversation draws from its own generator.

Stock moshi samples every batch row in one call from torch's shared generator, so with B
conversations in one ``LMGen`` a slot's sampled words would depend on how many neighbours were
live at each tick. :class:`RowSampler` has moshi's ``sample_token`` signature and meaning
(softmax at ``temp``, then top-p, top-k or plain; greedy when sampling is off), but each row
that steps draws from its slot's own ``torch.Generator`` and masked rows draw nothing, so a
slot's samples depend only on its seed and its own logits. It is swapped in for moshi's
module-level ``sample_token`` only around a batched step (one engine thread calls it).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch


class RowSampler:
    def __init__(self, slots: int, device: torch.device) -> None:
        self.generators = [torch.Generator(device=device) for _ in range(slots)]
        for slot in range(slots):
            self.reseed(slot, None)
        self.rows: list[int] = []  # the rows stepping now; the others are masked out

    def reseed(self, slot: int, seed: int | None) -> None:
        """``sampling.seed`` when set (the same for every slot, as a single stream would be
        seeded at each prime), else fresh entropy."""
        self.generators[slot].manual_seed(
            seed if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1)

    def __call__(self, logits: torch.Tensor, use_sampling: bool = False, temp: float = 1.0,
                 top_k: int = 0, top_p: float = 0.0) -> torch.Tensor:
        if not (use_sampling and temp > 0.0):
            return torch.argmax(logits, dim=-1)
        probs = torch.softmax(logits / temp, dim=-1)
        out = torch.argmax(probs, dim=-1)  # masked rows: any valid id (their state won't move)
        for row in self.rows:
            out[row] = _draw(probs[row], top_k, top_p, self.generators[row])
        return out


def _draw(probs: torch.Tensor, top_k: int, top_p: float, gen: torch.Generator) -> torch.Tensor:
    """One row's sample (moshi's exponential-race multinomial), from ``gen``."""
    index: torch.Tensor | None = None
    if top_p > 0.0:
        probs, index = torch.sort(probs, dim=-1, descending=True)
        keep = (torch.cumsum(probs, dim=-1) - probs) <= top_p
        probs = probs * keep
    elif top_k > 0:
        probs, index = torch.topk(probs, min(top_k, probs.shape[-1]), dim=-1)
    noise = torch.empty_like(probs).exponential_(1, generator=gen)
    choice = (probs / noise).argmax(dim=-1, keepdim=True)
    return (index.gather(-1, choice) if index is not None else choice)[..., 0]


@contextlib.contextmanager
def installed(sampler: RowSampler, rows: list[int]) -> Iterator[None]:
    """moshi's LMGen samples with ``sampler`` for ``rows`` inside the block."""
    from moshi.models import lm

    previous, lm.sample_token = lm.sample_token, sampler
    sampler.rows = rows
    try:
        yield
    finally:
        lm.sample_token = previous
        sampler.rows = []
