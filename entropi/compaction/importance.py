"""How much a sentence matters to a companion that must not forget it (no cue words needed).

``importance = raw / (raw + HALF)`` in 0..1, where ``raw`` adds up real signals:

- **information**: for each content word, how much rarer it is than everyday talk, from a
  general English word-frequency table (``wordfreq``, Zipf scale): ``max(0, 5 - zipf)``.
  "coeliac" (2.3), "cello" (3.3) and "shakshuka" (1.6) carry a lot; "idea", "tea", "minute"
  nothing. Capped, so one odd word (or an ASR garble) cannot outweigh everything else;
- **names** of people, pets and places: capitalised words inside a sentence;
- **relations** (sister, partner, neighbour, dog …), **health** (allergic, blood, diagnosed,
  prescription …), **dates and times** (weekdays, months, clock times, "next week", digits),
  **stated preferences**, **who the user is** (I work / live / used to / my name …) and
  **plans** (saving for, hoping to, applied for …).

Chit-chat ("I like that idea", "I will make tea in a minute", "the bus was late again")
has no rare word and no signal: it stays below :data:`KEEP` and never enters the ledger, so
it can never displace a fact. The word lists name *kinds* of signal; the information part
is what finds the facts no list foresaw.
"""

from __future__ import annotations

import re
from functools import lru_cache

from entropi.text.gates import content_words
from entropi.text.said import TIME_WORDS

HALF = 3.0  # raw score at which importance is 0.5
KEEP = 0.4  # below this a sentence is small talk: not a ledger item (raw 2.0)
COMMON_ZIPF = 5.0  # words at least this frequent carry no information here
INFO_CAP = 4.0  # cap on the information part
WORD_CAP = 2.5  # and on one word's share of it (an odd word or an ASR garble)
UNKNOWN_BITS = 1.0  # a lower-case word no table knows
NAME_BONUS, NAME_CAP = 1.5, 2.5
SIGNAL_BONUS = 1.2  # each kind of signal, once
DUE_BONUS = 0.8  # a promise with a day to keep it on ("tomorrow", "on Monday", "at 6 pm")
_DUE = re.compile(r"\b(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day|tomorrow|next \w+|"
                  r"\d{1,2}(?::\d\d)? ?(?:am|pm)|by the \w+|before the \w+)\b", re.IGNORECASE)

_RELATION = re.compile(
    r"\b(?:sister|brother|sibling|mum|mom|mother|dad|father|parents?|wife|husband|partner|"
    r"fianc[ée]e?|girlfriend|boyfriend|son|daughter|kids?|children|child|baby|grand(?:ma|pa|"
    r"mother|father|son|daughter|kids?|children)|uncle|aunt|cousin|niece|nephew|friend|"
    r"neighbou?r|colleague|boss|flatmate|roommate|dog|cat|puppy|kitten|pet|horse|parrot|"
    r"rabbit|hamster|tortoise|family|in-laws?)s?\b", re.IGNORECASE)
_HEALTH = re.compile(
    r"\b(?:allerg\w*|intoleran\w*|disease|diabet\w*|asthma|blood|pressure|diagnos\w*|"
    r"prescription|medication|medicine|pills?|tablets?|insulin|inhaler|doctor|gp|dentist|"
    r"nurse|hospital|clinic|surgery|operation|appointment|therapy|therapist|injur\w*|"
    r"broken|sprain\w*|pain|migraine\w*|pregnan\w*|vegan|vegetarian|gluten|lactose|"
    r"kidney|heart|knee|hip|cancer|eyesight|glasses)\b", re.IGNORECASE)
_DATE = re.compile(
    r"\b(?:january|february|march|april|may|june|july|august|september|october|november|"
    r"december|birthday|anniversary|wedding|weekend|morning|evening|afternoon|noon|"
    r"o'clock|\d+(?:st|nd|rd|th)?|next (?:week|month|year|\w+day)|in \w+ (?:days|weeks))\b",
    re.IGNORECASE)
_PREFERENCE = re.compile(
    r"\b(?:favou?rite|prefer\w*|love|loves|adore|hate|hates|can't stand|cannot stand|"
    r"don't eat|never eat|only thing|can't eat|allergic|fan of|obsessed)\b",
    re.IGNORECASE)
_IDENTITY = re.compile(
    r"\b(?:my name|i(?:'m| am) (?:a|an|from|called|named|\d+)|i (?:work|live|grew up|was born"
    r"|used to|moved|study|teach|play|collect|volunteer|train)|called|named|born|years old|"
    r"blood type|my \w+ is)\b", re.IGNORECASE)
_PLAN = re.compile(
    r"\b(?:plans?|planning|saving (?:up )?for|hoping to|dream(?:ing)? of|goal|aim(?:ing)? to|"
    r"applied for|trying to get|big day)\b", re.IGNORECASE)
# A capitalised word not at a sentence start and not "I"/"I'm": a name or a place.
_NAME = re.compile(r"(?<=[\w,;:] )(?!I\b|I'[a-z]+\b|OK\b)[A-Z][A-Za-z'\-]+")
# Words PersonaPlex or ASR capitalise that are no names (days and months count as dates).
_NOT_NAME_WORDS = """monday tuesday wednesday thursday friday saturday sunday january
february march april may june july august september october november december english
okay mr mrs ms dr"""
_NOT_NAMES = frozenset(_NOT_NAME_WORDS.split())


@lru_cache(maxsize=65536)
def zipf(word: str) -> float:
    """Zipf frequency of the word or its commonest plain stem ("tidied" is as common as
    "tidy": an inflection adds no information)."""
    from wordfreq import zipf_frequency  # lazy: its tables load on first use (~0.3 s)

    return max(zipf_frequency(w, "en") for w in _stems(word))


def _stems(word: str) -> list[str]:
    out = [word]
    for suffix, repl in (("ied", "y"), ("ies", "y"), ("ing", ""), ("ing", "e"), ("ed", ""),
                         ("ed", "e"), ("es", ""), ("s", ""), ("'s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            out.append(word[: -len(suffix)] + repl)
    return out


def information(text: str) -> float:
    """Information content of the content words against everyday English, capped. A word
    the table has never seen counts little unless capitalised (a name): in lower case it is
    more likely a recogniser's garble ("behuts" for "peanuts") than news."""
    capitalised = {m.lower() for m in re.findall(r"\b[A-Z][a-z']+", text)}

    def bits(w: str) -> float:
        z = zipf(w)
        if z == 0.0 and w not in capitalised:
            return UNKNOWN_BITS
        return min(WORD_CAP, max(0.0, COMMON_ZIPF - z))

    return min(INFO_CAP, sum(bits(w) for w in content_words(text)))


def names(text: str) -> list[str]:
    return [m for m in _NAME.findall(text) if m.lower() not in _NOT_NAMES]


def signals(text: str) -> list[str]:
    """Which kinds of signal the sentence carries (for tests and the bench's report)."""
    kinds = [kind for kind, rx in (("relation", _RELATION), ("health", _HEALTH),
                                   ("date", _DATE), ("preference", _PREFERENCE),
                                   ("identity", _IDENTITY), ("plan", _PLAN))
             if rx.search(text)]
    if "date" not in kinds and TIME_WORDS.search(text):
        kinds.append("date")
    return kinds


def raw_score(text: str, promise: bool = False) -> float:
    named = min(NAME_CAP, NAME_BONUS * len(set(names(text))))
    due = DUE_BONUS if promise and _DUE.search(text) else 0.0
    return information(text) + named + SIGNAL_BONUS * len(signals(text)) + due


def importance(text: str, promise: bool = False) -> float:
    """0..1; ``promise``: the sentence is a commitment (a due day then counts once more)."""
    raw = raw_score(text, promise)
    return round(raw / (raw + HALF), 3)


def specific_words(text: str) -> set[str]:
    """Words a shorter phrasing must keep: names, numbers and rare words."""
    out = {n.lower() for n in names(text)}
    out |= {w for w in content_words(text) if w[0].isdigit() or zipf(w) < 3.5}
    return out
