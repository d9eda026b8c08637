"""Consent: the slash commands against real memory files, and the gate on what is written."""

from __future__ import annotations

import json

from entropi.config import Config
from entropi.memory.consent import ConsentStore, consent_path
from entropi.memory.journal import Journal
from entropi.memory.profile import ProfileStore, ProfileUpdate, merge
from entropi.text.utterance import Utterance
from entropi.transports.discord.consent import WITHHELD_PROMPT, ConsentCommands, ConsentGate
from tests.memory.helpers import T0, later, make_entry

ANN, BOB = 11, 22


def _setup(tmp_path):
    cfg = Config.model_validate({"memory": {"journal_dir": str(tmp_path / "journal"),
                                            "profile_path": str(tmp_path / "state/p.json")}})
    journal = Journal(cfg.memory.journal_dir)
    for i, text in enumerate(["Ann told me about her hill walks", "Bob hates rain",
                              "Ann and I planned a picnic"]):
        journal.append(make_entry(text, at=later(60 * i)))
    store = ProfileStore(cfg.memory.profile_path, "Ada")
    store.update(lambda p: merge(p, ProfileUpdate(talked=["Ann", "Bob"]), T0))
    store.update(lambda p: merge(p, ProfileUpdate(talked=["Ann"]), later(60)))
    consent = ConsentStore(consent_path(cfg), default_remember=False)
    return cfg, journal, store, consent, ConsentCommands(cfg, consent)


def test_remember_forget_and_what_do_you_know_on_real_files(tmp_path):
    _, journal, store, consent, commands = _setup(tmp_path)
    assert not consent.remembers(ANN)  # opt-in by default
    assert "remember" in commands.remember_me(ANN, "Ann")
    # Persisted beside the profile, private, and read back by a fresh store.
    path = tmp_path / "state" / "discord_consent.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert ConsentStore(path, default_remember=False).remembers(ANN)
    assert consent.opted_in() == ["Ann"]
    ann = store.load().person("Ann")
    assert ann.times_talked == 2 and ann.first_seen == T0 and ann.last_seen == later(60)

    answer = commands.what_do_you_know(ANN, "Ann")
    assert "I remember our conversations, Ann" in answer
    assert "talked in 2 windows" in answer and "hill walks" in answer and "picnic" in answer
    assert "Bob" not in answer

    answer = commands.forget_me(ANN, "Ann")
    assert "deleted 2 journal entries" in answer
    assert [e.summary for e in journal.read_all()] == ["Bob hates rain"]
    assert store.load().person("Ann") is None and store.load().person("Bob") is not None
    assert not ConsentStore(path, default_remember=False).remembers(ANN)
    assert json.loads(path.read_text())["people"][str(ANN)]["remember"] is False
    assert "do not keep memories of you, Ann" in commands.what_do_you_know(ANN, "Ann")


def test_gate_keeps_only_what_opted_in_people_said(tmp_path):
    _, _, _, consent, commands = _setup(tmp_path)
    commands.remember_me(ANN, "Ann")
    gate = ConsentGate(consent)
    gate.heard(ANN, "Ann")
    gate.heard(BOB, "Bob")
    ann_only = [Utterance("user", "", 2.0, name="Ann"), Utterance("agent", "Nice hills.")]
    directive = {"summary": "Ann and Bob chatted", "profile_update": {
        "people": [{"name": "Bob", "notes": ["hates rain"]}, {"name": "Ann"}]}}
    kept = gate.persisted(ann_only, "Ann and Bob talked about hills.", directive)
    assert kept.utterances == ann_only and kept.people == ("Ann",)
    # Names of people who never opted in are scrubbed from carried-over summaries.
    assert "Bob" not in kept.prompt and "Ann" in kept.prompt
    assert "Bob" not in json.dumps(kept.directive)
    assert [p["name"] for p in kept.directive["profile_update"]["people"]] == ["Ann"]

    mixed = [*ann_only, Utterance("user", "it rained all day", 1.5, name="Bob"),
             Utterance("user", "", 1.0, name="Ann, Bob")]
    kept = gate.persisted(mixed, "Bob said it rained.", directive)
    assert kept.utterances == ann_only  # Bob's turn and the shared turn stay live-only
    assert kept.prompt == WITHHELD_PROMPT and kept.directive is None
