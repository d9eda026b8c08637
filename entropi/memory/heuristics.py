"""Keyword heuristics used when the LLM gives no memory directive (or leaves fields out).

Cheap and deterministic on purpose: they run for every window on the writer task and
must give the same answer in tests. They decide emotion, commitments, topic tags, a short
summary and an importance score in 0..1.
"""

from __future__ import annotations

import re

from entropi.memory.entry import normalise_tag

# emotion -> cue words; the first emotion with the most cues wins, else "neutral".
EMOTIONS: dict[str, tuple[str, ...]] = {
    "happy": ("happy", "glad", "great", "wonderful", "love", "loved", "yay", "delighted",
              "fun", "awesome"),
    "excited": ("excited", "can't wait", "thrilled", "amazing", "wow"),
    "calm": ("calm", "relaxed", "peaceful", "quiet", "gentle", "fine", "okay"),
    "sad": ("sad", "miss", "lonely", "cry", "crying", "lost", "grief", "sorry", "upset"),
    "anxious": ("worried", "anxious", "nervous", "scared", "afraid", "stress", "stressed"),
    "angry": ("angry", "furious", "annoyed", "hate", "mad", "frustrated"),
    "grateful": ("thank", "thanks", "grateful", "appreciate"),
}
TOPICS: dict[str, tuple[str, ...]] = {
    "planning": ("plan", "planning", "schedule", "tomorrow", "next week", "appointment",
                 "meeting", "deadline", "trip", "remind", "weekend", "calendar"),
    "memory": ("remember", "recall", "forget", "forgot", "memory", "memories", "last time"),
    "music": ("music", "song", "album", "band", "guitar", "piano", "sing", "concert"),
    "art": ("art", "painting", "drawing", "poem", "poetry", "film", "movie", "book", "novel"),
    "work": ("work", "job", "boss", "office", "project", "colleague", "career"),
    "health": ("doctor", "sick", "ill", "health", "sleep", "tired", "pain", "hospital"),
    "family": ("mum", "mom", "dad", "mother", "father", "sister", "brother", "family",
               "daughter", "son", "partner", "wife", "husband"),
    "hobby": ("hobby", "garden", "gardening", "cooking", "hiking", "climbing", "chess",
              "running", "games"),
}
_COMMITMENT = re.compile(
    r"\b(i will|i'll|we will|we'll|let's|i promise|promise to|remind me|i'm going to|"
    r"i am going to|don't let me forget|i need to|i have to)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_EXPLICIT = re.compile(r"\b(remember (this|that)|don't forget|important|never forget)\b",
                       re.IGNORECASE)


def _count(text: str, cues: tuple[str, ...]) -> int:
    return sum(len(re.findall(rf"\b{re.escape(c)}s?\b", text)) for c in cues)  # plurals too


def detect_emotion(text: str) -> str:
    low = text.lower()
    scores = {name: _count(low, cues) for name, cues in EMOTIONS.items()}
    best = max(scores, key=lambda k: scores[k])
    return best if scores[best] else "neutral"


def detect_topics(text: str) -> list[str]:
    low = text.lower()
    return [name for name, cues in TOPICS.items() if _count(low, cues)]


def extract_commitments(text: str, limit: int = 5) -> list[str]:
    sentences = _SENTENCE.split(" ".join(text.split()))
    return [s.strip() for s in sentences if _COMMITMENT.search(s)][:limit]


SUMMARY_WORDS = 40


def summarise(text: str, max_words: int = SUMMARY_WORDS) -> str:
    """The first sentences, up to ``max_words``: the LLM's summary is better when given."""
    words = " ".join(text.split()).split(" ")
    short = " ".join(words[:max_words])
    return short + ("…" if len(words) > max_words else "")


def auto_tags(topics: list[str], emotion: str, extra: list[str] = ()) -> tuple[str, ...]:
    tags: list[str] = []
    for tag in [*topics, *extra, f"emotion:{emotion}"]:
        tag = normalise_tag(tag)
        if tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)


def importance(text: str, emotion: str, commitments: list[str], topics: list[str]) -> float:
    """Additive score: feelings, promises, explicit 'remember this', topics and length.

    Small talk ("hi, how are you, fine thanks") lands around 0.1–0.25, below the default
    0.35 threshold; a plan with a commitment lands above it.
    """
    words = len(text.split())
    score = 0.05
    score += 0.0 if emotion in ("neutral", "calm") else 0.2
    score += min(0.4, 0.2 * len(commitments))
    score += 0.3 if _EXPLICIT.search(text) else 0.0
    score += min(0.2, 0.1 * len([t for t in topics if t != "memory"]))
    score += min(0.15, words / 400)
    return round(min(1.0, score), 2)
