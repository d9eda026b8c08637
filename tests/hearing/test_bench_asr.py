"""bench asr's scoring and its --data input (the timing figures are the bench's, not tests')."""

from __future__ import annotations

from entropi.bench.asr import word_errors, words
from tests.commands.test_cli import entropi


def test_word_error_count_and_normalisation():
    ref = words("My cat is called Pepper.")
    assert word_errors(ref, words("my cat is called pepper")) == 0
    assert word_errors(ref, words("my cat called Peppa, yes")) == 3  # del + sub + ins
    assert word_errors(words("well-known"), words("well known")) == 0


def test_data_folder_without_pairs_is_one_line(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")  # no a.txt beside it
    proc = entropi("bench", "asr", "--data", str(tmp_path), "--model", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"input error: --data {tmp_path}: no WAV files with a .txt transcript beside them"]
