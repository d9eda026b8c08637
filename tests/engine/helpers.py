"""Shared probes for engine tests: what the transformer is fed, and what it predicts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from entropi.engine.engine import Engine


@contextmanager
def fed_tokens(engine: Engine) -> Iterator[list[np.ndarray]]:
    """Record the token ids each main-transformer call embeds: one ``[17, T]`` per call
    (text, agent 8, user 8), read from the embedding tables' own inputs."""
    lm = engine.lm
    flat: list[tuple[int, np.ndarray]] = []

    def hook(stream: int):
        def record(_module, args, _out) -> None:
            flat.append((stream, args[0][0].cpu().numpy().copy()))
        return record

    modules = [lm.text_emb, *lm.emb]
    handles = [m.register_forward_hook(hook(k)) for k, m in enumerate(modules)]
    calls: list[np.ndarray] = []
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()
        for i in range(0, len(flat), 17):
            group = dict(flat[i:i + 17])
            calls.append(np.stack([group[k] for k in range(17)]))


def run_frames(engine: Engine, n: int = 60, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Step ``n`` frames of random user codes: (text logits [n, card], outputs [n, 9])."""
    rng = np.random.default_rng(seed)
    logits: list[torch.Tensor] = []
    engine.lm_gen.on_text_logits_hook = lambda x: logits.append(x[0, 0, 0].clone())
    outs = []
    try:
        for _ in range(n):
            user = torch.as_tensor(rng.integers(0, 2048, (1, 8, 1)))
            outs.append(engine.step_codes(user)[0, :, 0].clone())
    finally:
        engine.lm_gen.on_text_logits_hook = None
    return torch.stack(logits), torch.stack(outs)
