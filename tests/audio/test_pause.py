"""Pause detection on synthetic patterns and on real espeak-ng speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from entropi.audio.wav import read_wav
from entropi.config import WindowSection
from entropi.conversation.pause import Cut, PauseDetector
from entropi.core.constants import FRAME_SIZE, TEXT_EPAD, TEXT_PAD

WORD = 1234  # any text id >= 4 is a word piece: the agent is speaking
RNG = np.random.default_rng(0)
LOUD = lambda: (0.1 * RNG.standard_normal(FRAME_SIZE)).astype(np.float32)  # noqa: E731 (-20 dBFS)
QUIET = lambda: (1e-4 * RNG.standard_normal(FRAME_SIZE)).astype(np.float32)  # noqa: E731 (-80)


def _window(**kw: float) -> WindowSection:
    base = dict(min_seconds=2.0, max_seconds=4.0, pause_seconds=0.8, grace_seconds=1.0)
    return WindowSection(**(base | kw))


def _run(det: PauseDetector, pattern: list[tuple[int, bool, int | None]]) -> list[tuple[int, Cut]]:
    """pattern: (frames, user_loud, agent_token); returns (frame index, cut) for each cut."""
    cuts, k = [], 0
    for frames, loud, token in pattern:
        for _ in range(frames):
            k += 1
            cut = det.update(LOUD() if loud else QUIET(), token)
            if cut is not None:
                cuts.append((k, cut))
    return cuts


def test_pause_after_min_seconds_cuts_once_pause_seconds_have_passed() -> None:
    det = PauseDetector(_window())
    # 30 frames (2.4 s) of user speech, then silence: the cut comes after 10 quiet frames.
    cuts = _run(det, [(30, True, TEXT_PAD), (30, False, TEXT_PAD)])
    assert cuts == [(40, Cut("pause", 3.2))]


def test_pause_before_min_seconds_waits_for_min() -> None:
    det = PauseDetector(_window())
    # Speech 0.8 s, then silence throughout: no cut before 2.0 s (frame 25), then at once.
    cuts = _run(det, [(10, True, TEXT_PAD), (40, False, TEXT_PAD)])
    assert cuts == [(25, Cut("pause", 2.0))]


def test_pause_cut_in_predicts_the_frame_of_the_cut() -> None:
    """The projection the controller uses to start compaction early matches update()."""
    for speech in (30, 10):  # silence starting after min_seconds, and before it
        det = PauseDetector(_window())
        _run(det, [(speech, True, TEXT_PAD)])
        assert det.pause_cut_in() is None  # someone is talking
        _run(det, [(1, False, TEXT_PAD)])
        predicted = det.frames + det.pause_cut_in()
        (cut,) = _run(det, [(40, False, TEXT_PAD)])
        assert cut[0] + speech + 1 == predicted
    assert det.pause_frames == 10


def test_agent_words_are_not_a_pause_but_pad_epad_and_none_are() -> None:
    det = PauseDetector(_window(max_seconds=10.0))
    # User silent all along; the agent talks for 3.2 s (past min_seconds), then its text
    # stream goes EPAD, None (no token yet), PAD: 10 quiet frames make the pause.
    cuts = _run(det, [(40, False, WORD), (4, False, TEXT_EPAD), (3, False, None),
                      (10, False, TEXT_PAD)])
    assert cuts == [(50, Cut("pause", 4.0))]


def test_past_max_seconds_a_shorter_real_pause_is_enough() -> None:
    det = PauseDetector(_window())
    # The user talks past max_seconds (50 frames); 6 quiet frames (480 ms) then end it.
    cuts = _run(det, [(55, True, TEXT_PAD), (10, False, TEXT_PAD)])
    assert cuts == [(61, Cut("max", 61 * 0.08))]


def test_past_max_seconds_a_gap_between_words_is_not_a_cut() -> None:
    """'call your dad on Sunday' | 'at 6 pm': a 0.24-0.32 s gap past max does not end it."""
    det = PauseDetector(_window(grace_seconds=3.0))
    words = [(8, True, TEXT_PAD), (3, False, TEXT_PAD), (6, True, TEXT_PAD),
             (4, False, TEXT_PAD)] * 4
    assert _run(det, words) == []
    assert det.seconds > 4.0 + 1.0


def test_in_pause_only_after_a_word_gap() -> None:
    det = PauseDetector(_window())
    _run(det, [(30, True, TEXT_PAD), (4, False, TEXT_PAD)])
    assert det.pause_cut_in() is not None and not det.in_pause  # 0.32 s: a word gap
    _run(det, [(1, False, TEXT_PAD)])
    assert det.in_pause


def test_short_gaps_between_words_do_not_cut_before_max() -> None:
    det = PauseDetector(_window())
    words = [(5, True, TEXT_PAD), (5, False, TEXT_PAD)] * 4  # 0.4 s gaps < pause_seconds
    assert _run(det, words) == []
    assert det.seconds == 3.2


def test_nonstop_talk_is_forced_at_max_plus_grace_and_reset_starts_over() -> None:
    det = PauseDetector(_window())
    cuts = _run(det, [(100, True, WORD)])
    assert cuts == [(62, Cut("forced", 62 * 0.08))]  # (4 + 1) s / 0.08 = 62.5 → frame 62
    assert det.update(QUIET(), TEXT_PAD) is None  # once per window
    det.reset()
    assert det.seconds == 0.0
    assert _run(det, [(30, True, WORD), (12, False, TEXT_PAD)])[0][1].reason == "pause"


def test_real_speech_cuts_in_the_silence_between_utterances(speech_dir: Path) -> None:
    first = read_wav(speech_dir / "first.wav")  # espeak-ng renders 22.05 kHz: resampled here
    second = read_wav(speech_dir / "second.wav")
    gap = np.zeros(int(1.5 * 24_000), np.float32)
    pcm = np.concatenate([first, gap, second, gap])
    det = PauseDetector(_window(min_seconds=1.0, max_seconds=30.0, pause_seconds=0.8,
                                vad_threshold_dbfs=-45.0))
    cut, frame_end = None, 0
    for start in range(0, pcm.size - FRAME_SIZE + 1, FRAME_SIZE):
        frame_end = start + FRAME_SIZE
        cut = det.update(pcm[start:frame_end], TEXT_PAD)
        if cut is not None:
            break
    assert cut is not None and cut.reason == "pause"
    speech_end = first.size / 24_000
    # Not inside the first sentence (its word gaps are short), and within the 1.5 s gap,
    # after 0.8 s of silence (give or take one frame of the sentence's quiet tail).
    assert speech_end + 0.8 - 0.16 <= cut.seconds <= speech_end + 1.5
    assert frame_end <= first.size + gap.size
