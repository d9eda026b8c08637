"""The context budget: the persona prefix must never be evicted mid-window (facts file)."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

from entropi.config.schema import Config
from entropi.core.constants import FRAME_RATE, PREFIX_OVERHEAD_FRAMES
from entropi.core.errors import ConfigError


class ContextBudget(BaseModel):
    """``context ≥ voice + 12 + prompt + (max_seconds + grace) × 12.5`` (facts file)."""

    model_config = ConfigDict(frozen=True)

    voice_frames: int
    silence_frames: int
    prompt_tokens: int
    window_frames: int
    context_window: int

    @property
    def needed(self) -> int:
        return self.voice_frames + self.silence_frames + self.prompt_tokens + self.window_frames

    @property
    def fits(self) -> bool:
        return self.needed <= self.context_window

    def rows(self) -> list[tuple[str, int]]:
        return [
            ("voice prompt frames", self.voice_frames),
            ("silence frames", self.silence_frames),
            ("prompt token budget", self.prompt_tokens),
            ("window frames (max_seconds + grace)", self.window_frames),
            ("needed", self.needed),
            ("context_window", self.context_window),
        ]


def context_budget(cfg: Config, voice_frames: int | None = None) -> ContextBudget:
    if voice_frames is None:
        voice_frames = math.ceil(cfg.voice.max_prompt_seconds * FRAME_RATE)
    window = math.ceil((cfg.window.max_seconds + cfg.window.grace_seconds) * FRAME_RATE)
    return ContextBudget(
        voice_frames=voice_frames,
        silence_frames=PREFIX_OVERHEAD_FRAMES,
        prompt_tokens=cfg.conversation.prompt_token_budget,
        window_frames=window,
        context_window=cfg.runtime.context_window,
    )


def check_budget(cfg: Config, voice_frames: int | None = None) -> ContextBudget:
    budget = context_budget(cfg, voice_frames)
    if not budget.fits:
        raise ConfigError(
            f"runtime.context_window: {budget.context_window} is too small: the persona prefix "
            f"would be evicted mid-window ({budget.voice_frames} voice frames + "
            f"{budget.silence_frames} silence + {budget.prompt_tokens} prompt tokens + "
            f"{budget.window_frames} window frames = {budget.needed}); use context_window >= "
            f"{budget.needed}, or shorten window.max_seconds, voice.max_prompt_seconds or "
            f"conversation.prompt_token_budget"
        )
    return budget


