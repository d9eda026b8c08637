"""Deterministic facts and commitments from one window's words (both speakers).

This is the extractive path the ledger always has, whatever the LLM writes: a sentence that
names a person, a date, a place, a preference or a promise is kept *verbatim* (only made
speakable), tagged with who said it. Markers (``[user spoke 2 s]``) carry no words and give
nothing. The LLM's structured facts are added on top after the gates and a grounding check.
"""

from __future__ import annotations

import re

from entropi.text.said import TIME_WORDS, Said, speaker_of
from entropi.text.speakable import make_speakable, sentences
from entropi.text.utterance import Utterance

_COMMITMENT = re.compile(
    r"\b(i will|i'll|we will|we'll|let's|let us|i promise|promise to|remind me|remind you|"
    r"i'm going to|i am going to|don't let me forget|i need to|i have to|i must|i should|"
    r"i plan to|i'm planning to)\b", re.IGNORECASE)
_FACT = re.compile(
    r"\bmy (?:name|sister|brother|mum|mom|mother|dad|father|wife|husband|partner|friend|"
    r"son|daughter|kid|kids|dog|cat|boss|birthday|favourite|favorite|job|work|home|flat|"
    r"house|car|doctor|team|band|grandma|grandmother|grandpa|grandfather|uncle|aunt|cousin|"
    r"neighbour|neighbor|girlfriend|boyfriend|colleague|allergy|hobby)\b"
    r"|\bi(?:'m| am) (?:allergic|from|a |an |married|moving|learning|training|studying|"
    r"vegetarian|vegan|\d)"
    r"|\bi (?:live|work|study|love|hate|like|prefer|play|grew up|was born|moved|can't stand)\b"
    r"|\b(?:is|was) called\b|\bnamed [A-Z]|\bborn (?:in|on)\b|\bbirthday\b|\ballergic\b"
    r"|\bfavou?rite\b",
    re.IGNORECASE)
_MIN_WORDS = 4
# A capitalised word inside a sentence is a name or a place ("Lena in Porto"); "I" is not.
_PROPER = re.compile(r"(?<=[a-z,;] )(?!I\b)[A-Z][a-z]{2,}\b")


def extract(transcript: list[Utterance]) -> list[Said]:
    """Facts and commitments in order of appearance; one per sentence at most."""
    out: list[Said] = []
    for u in transcript:
        if not u.text.strip():
            continue  # a marker: heard, not transcribed
        for s in sentences(make_speakable(u.text)):
            if len(s.split()) < _MIN_WORDS or s.endswith("?"):
                continue  # questions ask, they do not state
            if _COMMITMENT.search(s):
                out.append(Said("commitment", s, speaker_of(u)))
            elif _FACT.search(s) or TIME_WORDS.search(s) or _PROPER.search(s):
                out.append(Said("fact", s, speaker_of(u)))
    return out


def window_words(transcript: list[Utterance]) -> str:
    """Every word said in the window (both speakers, markers stripped): the grounding source."""
    return " ".join(u.text for u in transcript if u.text.strip())
