"""persona_state.json: merge rules, schema validation, atomic private writes, bad files."""

from __future__ import annotations

import json
import stat

import pytest
from pydantic import ValidationError

from entropi.core.errors import MemoryFileError
from entropi.memory import profile as P
from entropi.memory.profile import PersonaProfile, ProfileStore, ProfileUpdate, merge

from .helpers import T0, later


def test_lists_dedupe_case_insensitively_and_move_repeats_to_the_end():
    p = merge(PersonaProfile(), ProfileUpdate(hobbies=["chess", "Jazz piano", "hiking"]), T0)
    p = merge(p, ProfileUpdate(hobbies=["jazz PIANO", "  chess  "]), later(1))
    assert p.hobbies == ["hiking", "jazz PIANO", "chess"]


def test_caps_keep_the_newest():
    p = PersonaProfile()
    for i in range(P.MAX_REFLECTIONS + 7):
        p = merge(p, ProfileUpdate(reflections=[f"thought {i}"]), later(i))
    assert len(p.reflections) == P.MAX_REFLECTIONS
    assert p.reflections[-1] == f"thought {P.MAX_REFLECTIONS + 6}"
    assert "thought 0" not in p.reflections


def test_people_merge_by_name_blend_sentiment_and_keep_history():
    p = merge(PersonaProfile(), ProfileUpdate(people=[
        {"name": "Sam", "sentiment": 0.8, "notes": ["met at the climbing gym"]}]), T0)
    p = merge(p, ProfileUpdate(people=[
        {"name": "sam", "sentiment": -0.2, "notes": ["cancelled the trip"]}]), later(60))
    (sam,) = p.people
    assert sam.name == "Sam" and sam.sentiment == pytest.approx(0.3)
    assert sam.notes == ["met at the climbing gym", "cancelled the trip"]
    assert sam.first_seen == T0 and sam.last_seen == later(60)
    assert "Sam (+0.3; cancelled the trip)" in p.snapshot()


def test_update_schema_rejects_bad_types_and_ranges():
    with pytest.raises(ValidationError):
        ProfileUpdate.model_validate({"people": [{"name": "Sam", "sentiment": 3}]})
    with pytest.raises(ValidationError):
        ProfileUpdate.model_validate({"hobbies": "chess"})
    with pytest.raises(ValidationError):
        ProfileUpdate.model_validate({"hobbies": ["x" * 500]})


def test_store_writes_atomically_private_and_reads_back(tmp_path):
    store = ProfileStore(tmp_path / "persona_state.json", "Ada")
    store.update(lambda p: merge(p, ProfileUpdate(artistic_tastes=["Hopper"]), T0))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert json.loads(store.path.read_text())["artistic_tastes"] == ["Hopper"]
    assert store.load().artistic_tastes == ["Hopper"]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_broken_json_names_file_and_line_and_is_kept(tmp_path):
    path = tmp_path / "persona_state.json"
    text = '{\n  "version": 1,\n  "hobbies": ["chess",\n}\n'
    path.write_text(text)
    with pytest.raises(MemoryFileError) as err:
        ProfileStore(path, "Ada").update(lambda p: p)
    assert err.value.message.startswith(f"{path} line 4:")
    assert path.read_text() == text


def test_schema_violation_names_the_key_and_its_line(tmp_path):
    path = tmp_path / "persona_state.json"
    path.write_text('{\n  "version": 1,\n  "people": [\n    {"name": "Sam", "sentiment": 7}\n'
                    '  ]\n}\n')
    with pytest.raises(MemoryFileError) as err:
        ProfileStore(path, "Ada").load()
    assert f"{path} line 4: people.0.sentiment" in err.value.message
