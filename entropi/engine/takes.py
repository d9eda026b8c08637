"""Raw forced-text takes: PersonaPlex speaking a given text schedule in the persona's voice.

For each take: prime the engine with the persona, seed, then step with a silent user while
every sampled text token is replaced by the schedule. The replacement happens in LMGen's
``on_text_hook``, in place, before the depformer runs, so the agent's audio codebooks are
sampled **conditioned on the forced text**, and the forced token is what LMGen writes back
into its cache for the next step. Choosing, trimming and caching takes is
:mod:`entropi.clips.render`'s job.

Rendering never disturbs the conversation: the live streaming state (KV caches, LMGen, Mimi),
the torch RNG and the sampling settings are saved first and put back in place afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from entropi.config import Config
from entropi.core.constants import FRAME_SIZE
from entropi.engine.engine import Engine
from entropi.engine.snapshot import Snapshot


@contextmanager
def preserved_state(engine: Engine) -> Iterator[None]:
    """Whatever runs inside leaves the live conversation exactly as it found it."""
    with torch.inference_mode():
        live = Snapshot(engine.snapshot.modules)
    cuda = engine.device.type == "cuda"
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state(engine.device) if cuda else None
    gen = engine.lm_gen
    saved = (gen.on_text_hook, gen.temp, gen.top_k, gen._streaming_state.graphed_depth)
    try:
        yield
    finally:
        gen.on_text_hook, gen.temp, gen.top_k, gen._streaming_state.graphed_depth = saved
        with torch.inference_mode():
            live.restore()
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state(cuda_rng, engine.device)


def use_render_sampling(engine: Engine, cfg: Config) -> None:
    """Apply ``voice.render.audio_temp/topk`` (call inside :func:`preserved_state`).

    A captured CUDA graph of the depformer has the live temperature baked in, so when the
    render settings differ it runs uncaptured while rendering (slower, but correct).
    """
    r, gen = cfg.voice.render, engine.lm_gen
    temp = gen.temp if r.audio_temp is None else r.audio_temp
    top_k = gen.top_k if r.audio_topk is None else r.audio_topk
    if (temp, top_k) != (gen.temp, gen.top_k):
        gen.temp, gen.top_k = temp, top_k
        gen._streaming_state.graphed_depth = gen.depformer_step


@contextmanager
def forced_text(engine: Engine, tokens: tuple[int, ...]) -> Iterator[list[int]]:
    """Replace the sampled text token of the next ``len(tokens)`` steps, in order."""
    gen, fed = engine.lm_gen, []

    def hook(text_token: torch.Tensor) -> None:
        if len(fed) < len(tokens):
            text_token.fill_(tokens[len(fed)])  # in place: the depformer sees this token
            fed.append(tokens[len(fed)])

    previous, gen.on_text_hook = gen.on_text_hook, hook
    try:
        yield fed
    finally:
        gen.on_text_hook = previous


def render_take(engine: Engine, text: tuple[int, ...], prompt: str, seed: int
                ) -> tuple[np.ndarray, list[int]]:
    """One take: the raw 24 kHz agent audio and the text stream's tokens, frame by frame,
    with ``text`` forced one token per frame. (The text stream shows each step's token one
    frame later, so ``tokens[1:]`` is ``text[:-1]``.) Call inside :func:`rendering`."""
    engine.prime(prompt)
    torch.manual_seed(seed)
    silence = np.zeros(FRAME_SIZE, dtype=np.float32)
    pcm: list[np.ndarray] = []
    tokens: list[int] = []
    with forced_text(engine, text):
        for _ in text:
            out = engine.step(silence)
            pcm.append(out.pcm)
            tokens.append(out.token)
    return np.concatenate(pcm), tokens


@contextmanager
def rendering(engine: Engine, cfg: Config) -> Iterator[None]:
    """Inference mode, the live state preserved and the render sampling applied."""
    with torch.inference_mode(), preserved_state(engine):
        use_render_sampling(engine, cfg)
        yield
