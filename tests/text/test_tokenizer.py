"""The text stream's per-frame pieces: specials hidden, byte-fallback joined into characters."""

from __future__ import annotations

import pytest

from entropi.text.tokenizer import TextTokenizer, train_tiny_tokenizer


@pytest.fixture(scope="module")
def tok(tmp_path_factory) -> TextTokenizer:
    return TextTokenizer(train_tiny_tokenizer(tmp_path_factory.mktemp("tok") / "t.model"))


def test_pieces_rebuild_text_including_multibyte_characters(tok):
    text = "café ☕ and the mountains"
    ids = tok.encode(text)
    assert any(tok.sp.is_byte(i) for i in ids)  # the test must exercise byte fallback
    assert "".join(tok.piece(i) or "" for i in ids).strip() == text


def test_specials_and_broken_byte_sequences_yield_no_text(tok):
    assert [tok.piece(i) for i in (0, 1, 2, 3)] == [None] * 4
    lead = tok.sp.piece_to_id("<0xE2>")  # a 3-byte lead byte with nothing after it
    assert tok.piece(lead) is None
    word = tok.encode("ok")[0]
    assert "<0x" not in tok.piece(word) and tok.piece(word).strip()  # dropped, not leaked
