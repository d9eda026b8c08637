"""MemoryService end to end with real files: queue, writers, flush, restart, budget."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from entropi.core.errors import MemoryFileError
from entropi.memory.journal import Journal
from entropi.memory.record import WindowRecord
from entropi.memory.service import MemoryService, approx_tokens

from .helpers import later, memory_cfg

PLAN = "I'm nervous about the doctor appointment tomorrow. I'll call my sister on Sunday."
JAZZ = "We listened to a jazz album, the band was wonderful, remember that song."


def rec(window: int, text: str, seconds: float, directive=None) -> WindowRecord:
    return WindowRecord(window, later(seconds - 10), later(seconds), text, "You are Ada.",
                        directive)


async def test_submitted_windows_are_on_disk_after_stop(tmp_path):
    cfg = memory_cfg(tmp_path, cooldown_seconds=0)
    mem = MemoryService(cfg, persona_name="Ada")
    await mem.start()
    mem.submit(rec(1, "Hi. Fine, thanks.", 0))
    mem.submit(rec(2, PLAN, 20))
    # profile updates must be grounded in the window's words (Mia, sister, jazz are)
    mem.submit(rec(3, f"{JAZZ} Mia, my sister, loved it", 40, {"profile_update": {
        "hobbies": ["jazz"], "people": [{"name": "Mia", "sentiment": 0.5,
                                         "notes": ["sister"]}]}}))
    await mem.write_session_end("We made plans and listened to jazz.")
    await mem.stop()
    await mem.stop()  # second stop is a no-op
    stats = mem.stats()
    assert stats["entries_written"] == 3 and stats["entries_skipped"] == 1
    # The LLM's update plus the session-end reflection every session leaves.
    assert stats["profile_updates"] == 2 and stats["errors"] == 0 and stats["queued"] == 0
    entries = Journal(cfg.journal_dir).read_all()
    (end,) = [e for e in entries if "session-end" in e.tags]
    assert [e.window for e in entries if e is not end] == [2, 3]
    assert end.window == 3 and end.summary == "We made plans and listened to jazz."
    profile = json.loads(cfg.profile_path.read_text())
    assert profile["hobbies"] == ["jazz"] and profile["people"][0]["name"] == "Mia"
    (reflection,) = profile["reflections"]
    assert reflection.startswith(f"{end.timestamp:%Y-%m-%d}: a conversation of 3 windows")


def test_session_reflection_names_topics_and_mood():
    from collections import Counter

    from entropi.memory.service import session_reflection

    tags = Counter({"planning": 3, "emotion:anxious": 2, "music": 1, "session-end": 1,
                    "emotion:calm": 1})
    assert session_reflection(datetime(2026, 11, 23, tzinfo=UTC), tags, 4) == (
        "2026-11-23: a conversation of 4 windows about planning, music, mostly anxious.")
    assert session_reflection(datetime(2026, 11, 23, tzinfo=UTC), Counter(), 0) == ""


async def test_restart_reloads_index_and_context_respects_budget(tmp_path):
    cfg = memory_cfg(tmp_path, cooldown_seconds=0, retrieval_token_budget=40)
    first = MemoryService(cfg, persona_name="Ada")
    await first.start()
    first.submit(rec(1, PLAN, 0))
    first.submit(rec(2, JAZZ, 30, {"profile_update": {"hobbies": ["jazz"]}}))
    await first.stop()
    again = MemoryService(cfg, persona_name="Ada")
    await again.start()
    context = again.context_for("how did the doctor appointment go?")
    assert context.splitlines()[0].startswith("- ") and "doctor appointment" in context
    assert "Profile: hobbies: jazz" in context
    assert approx_tokens(context) <= 40
    tight = MemoryService(memory_cfg(tmp_path, retrieval_token_budget=8), persona_name="Ada")
    await tight.start()
    assert 0 < approx_tokens(tight.context_for("jazz")) <= 8
    await again.stop()
    await tight.stop()


async def test_full_queue_drops_oldest_and_counts(tmp_path):
    cfg = memory_cfg(tmp_path, queue_size=2, cooldown_seconds=0)
    mem = MemoryService(cfg, persona_name="Ada")
    await mem.start()
    for i in range(5):  # no await in between: the writer cannot drain yet
        mem.submit(rec(i, f"{PLAN} number {i}", i * 100))
    assert mem.stats()["dropped"] == 3
    await mem.stop()
    assert [e.window for e in Journal(cfg.journal_dir).read_all()] == [3, 4]


async def test_disabled_writes_nothing(tmp_path):
    mem = MemoryService(memory_cfg(tmp_path, enabled=False), persona_name="Ada")
    await mem.start()
    mem.submit(rec(1, PLAN, 0, {"log_memory": True}))
    await mem.write_session_end("bye")
    assert mem.context_for("doctor") == ""
    await mem.stop()
    assert list(tmp_path.iterdir()) == []


async def test_start_refuses_corrupt_journal_and_leaves_it(tmp_path):
    cfg = memory_cfg(tmp_path)
    mem = MemoryService(cfg, persona_name="Ada")
    await mem.start()
    mem.submit(rec(1, PLAN, 0))
    await mem.stop()
    (path,) = Journal(cfg.journal_dir).files()
    text = path.read_text().replace("- persona: Ada", "- persona: Ada\nmy own note", 1)
    path.write_text(text)
    with pytest.raises(MemoryFileError) as err:
        await MemoryService(cfg, persona_name="Ada").start()
    line = text.splitlines().index("my own note") + 1
    assert f"{path} line {line}: text outside" in err.value.message or \
        f"{path} line {line}: unexpected line" in err.value.message
    assert path.read_text() == text


async def test_purge_while_running_never_reaches_a_prompt(tmp_path):
    cfg = memory_cfg(tmp_path, cooldown_seconds=0)
    mem = MemoryService(cfg, persona_name="Ada")
    await mem.start()
    mem.submit(rec(1, PLAN, 0))
    mem.submit(rec(2, JAZZ, 30))
    await mem.stop()
    await mem.start()
    assert "doctor" in mem.context_for("doctor appointment")
    # what `entropi memory purge --tag health` does from another process
    assert Journal(cfg.journal_dir).remove(lambda e: "health" in e.tags) == 1
    assert mem.context_for("doctor appointment") == ""  # stale index: offer nothing
    await mem.reload()
    context = mem.context_for("doctor appointment")
    assert "jazz" in context and "doctor" not in context
    await mem.stop()


async def test_invalid_profile_update_is_never_written(tmp_path):
    cfg = memory_cfg(tmp_path)
    mem = MemoryService(cfg, persona_name="Ada")
    await mem.start()
    mem.submit(rec(1, PLAN, 0, {"profile_update": {"people": [{"name": ""}]}}))
    mem.submit(rec(2, JAZZ, 100, {"profile_update": {"hobbies": 42}}))
    await mem.stop()
    assert mem.stats()["entries_written"] == 2 and mem.stats()["profile_updates"] == 0
    assert not cfg.profile_path.exists()


async def test_start_refuses_corrupt_profile_and_leaves_it(tmp_path):
    cfg = memory_cfg(tmp_path)
    cfg.profile_path.parent.mkdir(parents=True)
    cfg.profile_path.write_text('{"hobbies": ["chess"]\n"people": []}\n')
    with pytest.raises(MemoryFileError, match=r"persona\.json line 2: not valid JSON"):
        await MemoryService(cfg, persona_name="Ada").start()
    assert cfg.profile_path.read_text() == '{"hobbies": ["chess"]\n"people": []}\n'


async def test_session_end_survives_a_broken_disk(tmp_path):
    cfg = memory_cfg(tmp_path)
    mem = MemoryService(cfg, persona_name="Ada")
    await mem.start()
    # A plain file where this year's directory should be: the append fails (even as root).
    (cfg.journal_dir / f"{datetime.now(UTC):%Y}").write_text("in the way")
    await mem.write_session_end("bye")  # must not raise: the daemon still has to stop()
    await mem.stop()
    assert mem.stats()["errors"] == 1 and mem.stats()["entries_written"] == 0
    assert not mem.running
