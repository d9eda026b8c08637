"""Fixed facts of Moshi/PersonaPlex audio and the forced persona prefix."""

from __future__ import annotations

SAMPLE_RATE = 24_000
FRAME_SIZE = 1_920  # samples per frame: 80 ms at 24 kHz
FRAME_RATE = SAMPLE_RATE / FRAME_SIZE  # 12.5 frames per second
FRAME_SECONDS = FRAME_SIZE / SAMPLE_RATE  # 0.08

# The persona prefix has 6 silence frames after the voice and 6 after the text prompt.
PREFIX_SILENCE_FRAMES = 6
PREFIX_OVERHEAD_FRAMES = 2 * PREFIX_SILENCE_FRAMES

# Text-stream special ids (PersonaPlex / Moshi SentencePiece layout).
TEXT_EPAD = 0
TEXT_BOS = 1
TEXT_EOS = 2
TEXT_PAD = 3
TEXT_SPECIAL_IDS = frozenset({TEXT_EPAD, TEXT_BOS, TEXT_EOS, TEXT_PAD})

HF_REPO_DEFAULT = "nvidia/personaplex-7b-v1"
