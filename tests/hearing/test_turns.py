"""User turns → words: the worker, failures back to markers, carrying late words, privacy."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from entropi.config import Config
from entropi.conversation.egress import words_for_llm
from entropi.conversation.transcript import WindowTranscript
from entropi.core.constants import FRAME_SIZE
from entropi.hearing.turns import TurnTranscriber, settle
from entropi.text.utterance import Utterance
from entropi.text.utterance import render_transcript as render

LOUD = np.full(FRAME_SIZE, 0.1, np.float32)
QUIET = np.zeros(FRAME_SIZE, np.float32)


class Scripted:
    """A recogniser that answers from a list; 'crash' raises, 'hang' blocks until released."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.release = threading.Event()
        self.seen: list[int] = []

    def transcribe(self, pcm16k: np.ndarray) -> str:
        self.seen.append(len(pcm16k))
        answer = self.answers.pop(0)
        if answer == "crash":
            raise RuntimeError("CUDA out of memory")
        if answer == "hang":
            self.release.wait(10)
            return "late words"
        return answer

    def describe(self) -> str:
        return "scripted"


def _turn(t: WindowTranscript, frames: int = 10) -> None:
    for _ in range(frames):
        t.add(None, user_pcm=LOUD, t=0.0)
    for _ in range(6):  # 0.48 s quiet ends the turn
        t.add(None, user_pcm=QUIET, t=0.0)


async def test_turns_become_user_lines_and_failures_markers(caplog):
    asr = TurnTranscriber(Scripted("my cat is called Pepper", "crash", "crash"), 5.0)
    t = WindowTranscript(asr)
    t.add("hello there", user_pcm=QUIET, t=0.0)
    _turn(t)
    _turn(t)
    _turn(t, frames=4)
    assert await settle(t.close(), 5.0) == 0
    text = render(t.utterances())
    assert text.splitlines() == ["agent: hello there", "user: my cat is called Pepper",
                                 "[user spoke 0.8 s]", "[user spoke 0.3 s]"]
    # the one frame before it (pre-roll), the turn, its 0.4 s quiet tail, at 16 kHz
    assert asr.transcriber.seen[0] == (1 + 10 + 5) * 1280
    assert asr.failures == 2
    asr.close()


async def test_a_turn_late_past_the_window_opens_the_next():
    rec = Scripted("hang", "next words")
    asr = TurnTranscriber(rec, 30.0)
    first = WindowTranscript(asr)
    _turn(first)
    assert await settle(first.close(), 0.05) == 1  # the bounded wait ran out
    assert render(first.utterances()) == "[user spoke 0.8 s]"
    second = WindowTranscript(asr, carried=first.pending())
    rec.release.set()
    _turn(second)
    await settle(second.close(), 5.0)
    assert render(second.utterances()).splitlines() == ["user: late words", "user: next words"]
    asr.close()


async def test_a_hung_recogniser_leaves_markers_and_the_talk_goes_on():
    rec = Scripted("hang")
    asr = TurnTranscriber(rec, 0.05)
    t = WindowTranscript(asr)
    _turn(t)
    while not asr.hung:
        await settle(t.pending(), 0.02)
    _turn(t)  # submitted while the worker is stuck: answered at once, a marker
    assert len(t.pending()) == 1
    rec.release.set()
    await settle(t.pending(), 5.0)
    assert render(t.utterances()).splitlines() == ["user: late words", "[user spoke 0.8 s]"]
    asr.close()


@pytest.mark.parametrize(("llm", "share", "words_sent"), [
    ({"backend": "embedded"}, False, True),
    ({"backend": "openai", "base_url": "http://127.0.0.1:8080/v1"}, False, True),
    ({"backend": "openai", "base_url": "https://llm.example.com/v1"}, False, False),
    ({"backend": "openrouter"}, False, False),
    ({"backend": "openrouter"}, True, True),
])
def test_words_leave_the_machine_only_with_opt_in(llm, share, words_sent):
    cfg = Config.model_validate({"secondary_model": llm, "asr": {"share_with_remote_llm": share}})
    said = [Utterance("agent", "hi"), Utterance("user", "my cat is Pepper", 1.2, "Bo")]
    out = render(words_for_llm(cfg, said))
    assert ("Pepper" in out) is words_sent
    if not words_sent:
        assert out.splitlines()[1] == "[user (Bo) spoke 1.2 s]"


async def test_each_finished_turn_is_reported_with_its_words_for_the_page():
    heard: list[tuple[str, float]] = []
    done = threading.Event()

    def on_turn(u: Utterance) -> None:  # called from the recogniser's thread
        heard.append((u.text, u.seconds))
        done.set()

    asr = TurnTranscriber(Scripted("is it raining"), 5.0)
    t = WindowTranscript(asr, on_turn=on_turn)
    _turn(t)
    assert done.wait(5.0)
    assert heard == [("is it raining", 0.8)]
    asr.close()
    plain = WindowTranscript(on_turn=on_turn)  # no recogniser: the marker, at once
    _turn(plain, frames=5)
    assert heard[-1] == ("", 0.4)
