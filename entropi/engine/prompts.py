"""PersonaPlex's forced persona prefix, as plain token tables (no torch).

Phases (facts file): voice frames · 6 silence · ``<system> {prompt} <system>`` one text token
per frame · 6 silence; the user stream carries SINE throughout, the text stream PAD except in
the text phase, the agent stream the voice's codes, then SILENCE.

``columns`` gives, for every prefix position ``c``, what moshi's ``LMGen`` delay cache holds
at column ``c`` once the frame is forced: stream ``k`` with acoustic delay ``d_k`` carries
frame ``c - d_k``. Position ``c`` is exactly the transformer input of step ``c`` (LMGen swaps
in its initial token where ``c <= d_k``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from entropi.core.constants import PREFIX_SILENCE_FRAMES, TEXT_PAD

SILENCE_CODES = (948, 243, 1178, 546, 1736, 1030, 1978, 2008)
SINE_CODES = (430, 1268, 381, 1611, 1095, 1495, 56, 472)
N_AUDIO = 8  # codebooks per audio stream
N_STREAMS = 1 + 2 * N_AUDIO  # text, agent audio, user audio


def system_text(prompt: str) -> str:
    """The text the model is primed with: the stripped prompt between the two tags."""
    if "<system>" in prompt.lower():  # config and LLM text are cleaned before this point
        raise ValueError("a system prompt must not contain <system>")
    return f"<system> {prompt.strip()} <system>"


@dataclass(frozen=True)
class Prefix:
    """Frame-level forced streams: ``text [N]``, ``agent [8, N]``, ``user [8, N]``."""

    text: np.ndarray
    agent: np.ndarray
    user: np.ndarray
    voice_frames: int
    prompt_tokens: int

    @property
    def frames(self) -> int:
        return int(self.text.shape[0])

    @property
    def voice_end(self) -> int:
        """First position after the voice and its 6 silence frames (the snapshot point)."""
        return self.voice_frames + PREFIX_SILENCE_FRAMES

    def columns(self, delays: list[int]) -> np.ndarray:
        """``[17, N]`` LMGen cache columns (see module docstring)."""
        frames = np.concatenate([self.text[None], self.agent, self.user], axis=0)
        out = np.empty_like(frames)
        for k, d in enumerate(delays):
            out[k, d:] = frames[k, : self.frames - d]
            out[k, :d] = frames[k, 0]  # never read: LMGen feeds its initial token there
        return out


def build_prefix(voice_codes: np.ndarray, prompt_ids: list[int]) -> Prefix:
    """The whole forced prefix for ``voice_codes [8, V]`` and the tokenised system text."""
    voice_codes = np.asarray(voice_codes, dtype=np.int64)
    v, p, s = voice_codes.shape[1], len(prompt_ids), PREFIX_SILENCE_FRAMES
    n = v + s + p + s
    silence = np.asarray(SILENCE_CODES, dtype=np.int64)[:, None]
    text = np.full(n, TEXT_PAD, dtype=np.int64)
    text[v + s: v + s + p] = prompt_ids
    agent = np.repeat(silence, n, axis=1)
    agent[:, :v] = voice_codes
    user = np.repeat(np.asarray(SINE_CODES, dtype=np.int64)[:, None], n, axis=1)
    return Prefix(text, agent, user, v, p)
