"""PersonaPlex's SentencePiece text tokenizer (no torch here: the LLM side counts tokens too).

Special ids follow Moshi: 0 EPAD (SentencePiece's unk slot), 1 BOS, 2 EOS, 3 PAD.
``train_tiny_tokenizer`` builds a small deterministic model for the demo and the tests.
"""

from __future__ import annotations

import codecs
import io
from pathlib import Path

import sentencepiece as spm

from entropi.core.constants import TEXT_SPECIAL_IDS
from entropi.core.errors import ModelError

_CORPUS = """\
You are a warm and curious companion who listens closely and speaks briefly.
The user talked about planning a trip to the mountains next week with a friend.
We discussed music, painting, books, cooking, gardens and the weather today.
I promised to remind them about the meeting on Friday morning at nine o'clock.
They feel calm and happy, a little tired, but excited about the new project.
Hello, how are you doing? I am fine, thank you. What would you like to talk about?
Let me think about that for a moment. That is an interesting question, give me a second.
Remember that her sister Maria likes jazz and lives in Lisbon near the river.
The conversation covered work, family, health, sleep, running and a birthday party.
Summary of the conversation so far: the user wants help with a plan and some advice.
"""


class TextTokenizer:
    """Thin wrapper so callers never touch SentencePiece's API directly."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"{path}: SentencePiece tokenizer file not found")
        try:
            self.sp = spm.SentencePieceProcessor(model_file=str(path))
        except Exception as exc:  # sentencepiece raises bare RuntimeError/OSError
            raise ModelError(f"{path}: not a SentencePiece model ({exc})") from None
        self.path = path
        # Byte-fallback pieces (``<0xE2>`` …) arrive one per frame; this joins them into
        # characters across frames and drops sequences that are not valid UTF-8.
        self._bytes = codecs.getincrementaldecoder("utf-8")(errors="ignore")

    def encode(self, text: str) -> list[int]:
        return list(self.sp.encode(text))

    def count(self, text: str) -> int:
        return len(self.sp.encode(text))

    def piece(self, token_id: int) -> str | None:
        """Text for one token of the model's text stream; None for PAD/EPAD/BOS/EOS."""
        if token_id in TEXT_SPECIAL_IDS or token_id >= self.sp.get_piece_size():
            return None
        if self.sp.is_byte(token_id):
            byte = int(self.sp.id_to_piece(token_id)[3:5], 16)
            return self._bytes.decode(bytes([byte])) or None
        pending = self._bytes.decode(b"", final=True)  # an unfinished sequence is dropped
        self._bytes.reset()
        return pending + self.sp.id_to_piece(token_id).replace("\u2581", " ")

    @property
    def vocab_size(self) -> int:
        return int(self.sp.get_piece_size())


def train_tiny_tokenizer(path: str | Path, vocab_size: int = 512) -> Path:
    """Train a small deterministic SentencePiece model (demo model and tests)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_CORPUS.splitlines()),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        byte_fallback=True,  # any text maps to real pieces, never to id 0 (EPAD)
        user_defined_symbols=["<system>"],
        unk_id=0, bos_id=1, eos_id=2, pad_id=3,
        num_threads=1,
        minloglevel=2,
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(model.getvalue())
    tmp.replace(path)
    return path
