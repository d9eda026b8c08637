"""Which windows become journal entries: heuristics, directive, threshold, cooldown."""

from __future__ import annotations

from entropi.memory import heuristics as h
from entropi.memory.planner import EntryPlanner
from entropi.memory.record import WindowRecord

from .helpers import later

SMALL_TALK = "Hi there. How are you? I'm fine, thanks. Nice weather."
PLAN = ("I'm nervous about the doctor appointment tomorrow. I'll call my sister on Sunday "
        "to plan the trip, remember that.")


def rec(window: int, text: str, seconds: float, directive=None) -> WindowRecord:
    return WindowRecord(window=window, started_at=later(seconds - 20), ended_at=later(seconds),
                        transcript=text, prompt="You are Ada.", directive=directive)


def planner(**kw) -> EntryPlanner:
    args = {"threshold": 0.35, "cooldown_seconds": 60.0, "cooldown_bypass": 0.7} | kw
    return EntryPlanner("Ada", **args)


def test_heuristics_tag_topics_emotion_and_commitments():
    assert h.detect_emotion("I feel calm and relaxed tonight") == "calm"
    assert h.detect_topics(PLAN)[:2] == ["planning", "memory"]
    assert h.extract_commitments(PLAN) == [
        "I'll call my sister on Sunday to plan the trip, remember that."]
    assert h.importance(SMALL_TALK, "calm", [], []) < 0.35 < h.importance(
        PLAN, "anxious", ["x"], ["planning", "health"])


def test_small_talk_is_below_threshold_plans_are_journaled():
    p = planner()
    assert p.decide(rec(1, SMALL_TALK, 0)).reason == "below_threshold"
    d = p.decide(rec(2, PLAN, 10))
    assert d.reason == "written" and d.entry is not None
    assert {"planning", "memory", "emotion:anxious"} <= set(d.entry.tags)
    assert d.entry.window == 2 and d.entry.timestamp == later(10) and d.entry.persona == "Ada"


def test_cooldown_spaces_low_importance_entries_but_not_important_ones():
    p = planner(threshold=0.1, cooldown_seconds=60, cooldown_bypass=0.9)
    middling = "We talked about music and the album I like."
    assert p.decide(rec(1, middling, 0)).reason == "written"
    assert p.decide(rec(2, middling, 30)).reason == "cooldown"
    assert p.decide(rec(3, PLAN, 40)).reason == "written"  # importance ≥ 0.9 bypasses
    assert p.decide(rec(4, middling, 70)).reason == "cooldown"  # 30 s after the plan
    assert p.decide(rec(5, middling, 101)).reason == "written"


def test_directive_is_grounded_and_log_memory_true_is_not_trusted():
    p = planner()
    d = p.decide(rec(1, "Hi Sam. " + SMALL_TALK, 0, {
        "log_memory": True, "summary": "Ada greeted Sam.", "emotion": "Calm",
        "tags": ["Greeting"], "importance": 0.2}))
    assert d.reason == "below_threshold"  # log_memory true no longer bypasses the filter
    d = p.decide(rec(2, "Hi Sam. " + PLAN, 10, {
        "summary": "Ada greeted Sam.", "emotion": "Calm", "tags": ["Greeting"]}))
    assert d.reason == "written" and d.entry is not None
    assert d.entry.summary == "Ada greeted Sam."  # every name in it was said in the window
    assert "greeting" in d.entry.tags and "emotion:calm" in d.entry.tags
    invented = p.decide(rec(3, PLAN, 400, {"summary": "The new job is going to be a great "
                                                      "opportunity with Sarah."}))
    assert invented.entry is not None and "Sarah" not in invented.entry.summary
    assert p.decide(rec(4, PLAN, 800, {"log_memory": False})).reason == "declined"


def test_one_entry_per_fact_and_commitment_filed_with_its_window_markers_stripped():
    p = planner(cooldown_seconds=600)
    text = ("[user spoke 2.0 s] user: My sister Lena lives in Porto. "
            "agent: I will remind you to call your dad on Sunday at 6 pm.")
    d = p.decide(rec(7, text, 0, {
        "facts": ["My sister Lena lives in Porto.", "Jordan is your best friend."],
        "commitments": ["I will remind you to call your dad on Sunday at 6 pm."]}))
    entries = d.entries
    assert [e.window for e in entries] == [7, 7]  # the invented Jordan fact is dropped
    assert entries[0].commitments == ("I will remind you to call your dad on Sunday at 6 pm.",)
    assert entries[1].summary == "My sister Lena lives in Porto."
    assert all(e.importance >= 0.35 for e in entries) and "spoke" not in entries[1].summary
    again = p.decide(rec(8, "My dog Rex loves the beach.", 30,
                         {"facts": ["My dog Rex loves the beach."]}))
    assert again.reason == "written"  # facts are not held back by the cooldown


def test_invalid_directive_is_ignored_and_heuristics_decide():
    p = planner()
    d = p.decide(rec(1, PLAN, 0, {"importance": "very", "log_memory": False}))
    assert d.reason == "written"  # log_memory False was part of the invalid directive
    assert p.decide(rec(2, SMALL_TALK, 500, ["not", "a", "dict"])).reason == "below_threshold"


def test_invalid_profile_update_is_dropped_but_journal_part_kept():
    p = planner()
    d = p.decide(rec(1, PLAN, 0, {"summary": "Plans for the trip.", "profile_update": {
        "people": [{"name": "Sam", "sentiment": "warm"}]}}))
    assert d.entry is not None and d.entry.summary == "Plans for the trip."
    assert d.profile_update is None
    d = p.decide(rec(2, SMALL_TALK + " Chess.", 10, {"profile_update": {"hobbies": ["chess"]}}))
    assert d.entry is None and d.profile_update is not None
    assert d.profile_update.hobbies == ["chess"]
