"""The Markdown entry format: exact round trip, torn blocks, strictness with line numbers."""

from __future__ import annotations

import pytest

from entropi.memory.entry import TORN_MARKER, EntryParseError, parse_markdown

from .helpers import later, make_entry


def test_round_trip_keeps_every_field_and_microseconds():
    entry = make_entry("Zoë said: the café — on Rua Augusta\nopens at nine.", window=42,
                       importance=0.73, tags=("planning", "memory"),
                       commitments=("call Sam on Sunday", "book the train"))
    (back,), torn = parse_markdown("# Journal\n\n" + entry.to_markdown())
    assert torn == 0
    assert back.timestamp == entry.timestamp and back.timestamp.microsecond == 123456
    assert back.id == entry.id and back.window == 42 and back.persona == "Ada"
    assert back.summary == "Zoë said: the café — on Rua Augusta opens at nine."
    assert back.tags == ("planning", "memory", "emotion:calm")
    assert back.commitments == ("call Sam on Sunday", "book the train")
    assert back.importance == 0.73 and back.emotion == "calm"


def test_many_entries_parse_in_order():
    entries = [make_entry(f"entry {i}", at=later(i), window=i) for i in range(5)]
    parsed, _ = parse_markdown("".join(e.to_markdown() for e in entries))
    assert [p.summary for p in parsed] == [f"entry {i}" for i in range(5)]


def test_torn_tail_is_skipped_not_an_error():
    good = make_entry("kept").to_markdown()
    torn = make_entry("lost", at=later(1)).to_markdown()[:60]
    entries, count = parse_markdown(good + torn)
    assert [e.summary for e in entries] == ["kept"] and count == 1


def test_torn_block_closed_by_marker_then_more_entries():
    text = (make_entry("a").to_markdown() + make_entry("b").to_markdown()[:50] + TORN_MARKER
            + "\n" + make_entry("c", at=later(2)).to_markdown())
    entries, count = parse_markdown(text)
    assert [e.summary for e in entries] == ["a", "c"] and count == 1


def test_hand_edit_reports_its_line():
    lines = make_entry().to_markdown().splitlines()
    lines[6] = "- importance: very"
    with pytest.raises(EntryParseError) as err:
        parse_markdown("\n".join(lines))
    assert err.value.line == 7 and "bad importance value" in err.value.message
    lines[6] = "some stray note"
    with pytest.raises(EntryParseError) as err:
        parse_markdown("\n".join(lines))
    assert err.value.line == 7 and "unexpected line" in err.value.message


def test_missing_end_marker_before_next_heading_is_an_error():
    first = make_entry("a").to_markdown().replace("<!-- end entry -->\n", "")
    with pytest.raises(EntryParseError) as err:
        parse_markdown(first + make_entry("b").to_markdown())
    assert err.value.line == 1 and "end marker" in err.value.message
