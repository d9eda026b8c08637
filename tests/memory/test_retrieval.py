"""BM25 ranking weighted by importance and recency; the token budget of context_for."""

from __future__ import annotations

from datetime import timedelta

from entropi.memory.retrieval import BM25Index
from entropi.memory.service import approx_tokens

from .helpers import T0, later, make_entry


def index_of(*entries) -> BM25Index:
    idx = BM25Index()
    for e in entries:
        idx.add(e)
    return idx


def test_relevance_leads():
    jazz = make_entry("Sam played jazz piano at the bar", tags=("music",))
    doctor = make_entry("Worried about the doctor appointment", at=later(1), tags=("health",))
    garden = make_entry("Planted tomatoes in the garden", at=later(2), tags=("hobby",))
    idx = index_of(jazz, doctor, garden)
    assert idx.search("what about the doctor?", 3, now=later(10))[0] is doctor
    assert idx.search("jazz", 1, now=later(10)) == [jazz]
    assert idx.search("music", 1, now=later(10)) == [jazz]  # tags are searchable


def test_importance_and_recency_break_ties():
    low = make_entry("we talked about the trip", importance=0.1)
    high = make_entry("we talked about the trip", at=later(1), importance=0.9)
    assert index_of(low, high).search("trip", 2, now=later(5)) == [high, low]
    old = make_entry("we talked about the trip", at=T0 - timedelta(days=60), importance=0.5)
    new = make_entry("we talked about the trip", at=T0, importance=0.5)
    assert index_of(old, new).search("trip", 2, now=later(5)) == [new, old]


def test_no_common_word_falls_back_to_important_recent_entries():
    a = make_entry("alpha", importance=0.2)
    b = make_entry("beta", at=later(1), importance=0.9)
    assert index_of(a, b).search("zzz", 1, now=later(5)) == [b]


def test_remove_drops_entries_from_results():
    a, b = make_entry("jazz night"), make_entry("jazz morning", at=later(1))
    idx = index_of(a, b)
    idx.remove({a.id})
    assert idx.search("jazz", 5, now=later(5)) == [b] and len(idx) == 1


def test_approx_tokens_is_words_times_1_3_rounded_up():
    assert approx_tokens("") == 0
    assert approx_tokens("one two three") == 4  # ceil(3 * 1.3)
    assert approx_tokens(" ".join(["w"] * 10)) == 13
