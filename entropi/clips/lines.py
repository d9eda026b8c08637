"""What PersonaPlex is made to say for each thinking line: a per-frame text schedule (no torch).

The text stream runs one token per 80 ms frame, mostly PAD while audio plays (Moshi's inner
monologue). Each word is laid out the way the model writes it: EPAD (end of padding), the
word's SentencePiece pieces one per frame, then PAD until the word has had its share of time
at ``voice.render.words_per_second``. After the last word, ``tail_seconds`` of PAD let the
audio finish (the acoustic codebooks and Mimi lag the text). A line whose words alone need
more than ``voice.max_clip_seconds`` is refused up front, before any model runs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from entropi.config import VoiceSection
from entropi.core.constants import FRAME_RATE, TEXT_EPAD, TEXT_PAD
from entropi.core.errors import InputError
from entropi.text.tokenizer import TextTokenizer

WORD_START = "\u2581"  # SentencePiece's leading-space mark


@dataclass(frozen=True)
class LinePlan:
    index: int  # position in voice.thinking_lines
    line: str
    text: tuple[int, ...]  # the forced text token of every rendered frame (speech, then tail)
    speech_frames: int  # frames the words take (the schedule without the tail)
    token_ids: tuple[int, ...]  # the line's pieces, in order

    @property
    def expected_seconds(self) -> float:
        return self.speech_frames / FRAME_RATE

    @property
    def slug(self) -> str:
        words = re.sub(r"[^a-z0-9]+", "_", self.line.lower()).strip("_")
        return f"{self.index + 1:02d}_{words[:40] or 'line'}"

    def where(self) -> str:
        return f'voice.thinking_lines[{self.index}] "{self.line}"'


def split_words(tokenizer: TextTokenizer, ids: list[int]) -> list[list[int]]:
    """Group piece ids into words (a piece starting with ``▁`` begins a new word)."""
    words: list[list[int]] = []
    for token in ids:
        starts = tokenizer.sp.id_to_piece(token).startswith(WORD_START)
        if starts or not words:
            words.append([])
        words[-1].append(token)
    return words


def plan_line(tokenizer: TextTokenizer, index: int, line: str, voice: VoiceSection) -> LinePlan:
    ids = tokenizer.encode(line)
    words = split_words(tokenizer, ids)
    per_word = max(1, round(FRAME_RATE / voice.render.words_per_second))
    speech: list[int] = []
    for word in words:
        speech += [TEXT_EPAD, *word] + [TEXT_PAD] * max(0, per_word - 1 - len(word))
    plan = LinePlan(index, line, tuple(speech + [TEXT_PAD] * tail_frames(voice)),
                    len(speech), tuple(ids))
    if plan.expected_seconds > voice.max_clip_seconds:
        raise InputError(
            f"{plan.where()}: needs about {plan.expected_seconds:.1f} s ({len(words)} words, "
            f"{len(ids)} tokens at {voice.render.words_per_second:g} words/s), over "
            f"voice.max_clip_seconds ({voice.max_clip_seconds:g} s); shorten the line or "
            f"raise the limit")
    return plan


def tail_frames(voice: VoiceSection) -> int:
    # +2: the first step still shows the prime's last token and audio lags text by a frame.
    return math.ceil(voice.render.tail_seconds * FRAME_RATE) + 2


def plan_lines(tokenizer: TextTokenizer, voice: VoiceSection) -> list[LinePlan]:
    """Every configured line's schedule; InputError names the first line that is too long."""
    return [plan_line(tokenizer, i, line, voice) for i, line in enumerate(voice.thinking_lines)]
