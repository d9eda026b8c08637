"""Keep what matters: importance without cue words, a ledger that evicts by importance, a prompt
that holds the most important and the most relevant facts, no nested lead-ins, no
content-free summaries. Phrasings here are not the shipped scripts' (the scorer must not
depend on them)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from entropi.compaction.budget import PromptBudget
from entropi.compaction.compactor import Compactor
from entropi.compaction.facts import compact, extract, prefer_shorter
from entropi.compaction.fallback import previous_summary
from entropi.compaction.importance import KEEP, importance, information
from entropi.compaction.structured import Vetter
from entropi.compaction.template import render_prompt
from entropi.memory.ledger import Ledger
from entropi.text.said import Said
from entropi.text.utterance import Utterance

session_loop = pytest.mark.asyncio(loop_scope="session")
NOW = datetime(2026, 11, 26, 9, tzinfo=UTC)

MATTERS = [
    "Could you remind me to pick up the prescription on Thursday?",
    "It is coeliac disease.",
    "I used to play the cello.",
    "The only thing I ever cook is shakshuka.",
    "My blood type is O negative.",
    "I have a job interview at the maritime museum next Tuesday.",
    "Our lodger Kwame fixes bicycles for a living.",
    "Grandad turns ninety on the third of June.",
]
SMALL_TALK = [
    "I like that idea.", "I will make tea in a minute.", "The bus was late again.",
    "I went for a short walk in the park.", "What do you think about that?",
    "That sounds really nice.", "I will think about it.", "Yeah, I know what you mean.",
    "Not much happened today.", "I need to sit down for a bit.",
]


def test_facts_score_above_small_talk_without_cue_words() -> None:
    low = {s: importance(s) for s in SMALL_TALK}
    high = {s: importance(s) for s in MATTERS}
    assert all(v < KEEP for v in low.values()), low
    assert all(v >= KEEP for v in high.values()), high
    assert min(high.values()) > max(low.values())
    # a word no table knows is a name when capitalised, more likely garble when not
    assert information("We met Wibblewump there.") > information("We met wibblewump there.")


def test_candidates_are_user_sentences_questions_and_either_speakers_promises() -> None:
    said = extract([
        Utterance("user", "Oh, well, you know, my blood type is O negative. I like that idea.",
                  name="Ines"),
        Utterance("agent", "Your cousin Bartholomew sounds like a sculptor in Valparaiso."),
        Utterance("user", "Could you remind me to pick up the prescription on Thursday?"),
        Utterance("agent", "I will ask you about the prescription on Thursday morning."),
        Utterance("user", "Hmm. I will make tea in a minute."),
    ])
    assert [(s.kind, s.who, s.text) for s in said] == [
        ("fact", "user:Ines", "My blood type is O negative."),  # fillers stripped
        ("commitment", "user", "Could you remind me to pick up the prescription on Thursday?"),
        ("commitment", "agent", "I will ask you about the prescription on Thursday morning."),
    ]  # the agent's statement (names and all) is no candidate; the tea is small talk
    assert compact("Um, so, erm, we moved here from Lisbon.") == "We moved here from Lisbon."
    assert compact("No peanuts for me, sadly.") == "No peanuts for me, sadly."  # no filler


def test_a_sentence_leaning_on_the_previous_one_is_kept_with_it() -> None:
    (said,) = extract([Utterance("user", "Do you know coeliac disease? I was diagnosed with "
                                         "it in spring.")])
    assert said.text == "Do you know coeliac disease? I was diagnosed with it in spring."


def test_the_llms_grounded_shorter_phrasing_replaces_the_long_one() -> None:
    long = Said("fact", "So my grandson Tomasz, who is lovely, turns seven in April.", "user")
    short = Said("fact", "Tomasz turns seven in April.", "user")
    lossy = Said("fact", "A grandson turns seven.", "user")  # loses the name: not taken
    assert [s.text for s in prefer_shorter([long], [short])] == [short.text]
    assert prefer_shorter([long], [lossy])[0].text == long.text


@session_loop
async def test_small_talk_never_displaces_a_fact(make_cfg, tokenizer) -> None:
    """Five facts in window 1, then 60 windows of 'I like / I will / I need to' small talk
    (offline): the ledger holds the facts and nothing else, and every prompt holds the most
    important of them."""
    cfg = make_cfg(conversation={"prompt_token_budget": 200})
    compactor = Compactor(None, cfg, tokenizer.count)
    await compactor.compact([Utterance("user", " ".join(MATTERS[1:6]), name="Ines")])
    top = max(compactor.ledger.facts(), key=lambda i: i.importance).text
    for w in range(60):
        result = await compactor.compact([
            Utterance("user", f"{SMALL_TALK[w % len(SMALL_TALK)]} "
                              f"{SMALL_TALK[(w + 3) % len(SMALL_TALK)]}", name="Ines"),
            Utterance("agent", "Mm, tell me more.")])
        assert top in result.prompt, (w, result.prompt)
    assert {i.text for i in compactor.ledger.items} == set(MATTERS[1:6])


def test_the_prompt_holds_the_most_important_and_the_most_relevant_fact(tokenizer) -> None:
    ledger = Ledger()
    people = ("Anwen", "Bodhi", "Ciaran", "Dagny", "Eilidh", "Fergus", "Greta", "Hamish",
              "Ingrid", "Jovan", "Kirsi", "Lorcan")
    hobbies = ("bees", "kites", "ferrets", "orchids", "clocks", "bonsai", "canoes", "geese",
               "violins", "llamas", "tapestries", "telescopes")
    facts = [Said("fact", f"{p} keeps {h} at home.", "user", 0.9 - n / 100)
             for n, (p, h) in enumerate(zip(people, hobbies, strict=True))]
    facts.append(Said("fact", "The dentist Dr Okafor is on Bridge Street.", "user", 0.45))
    for w, fact in enumerate(facts):  # a window each: one window's items merge as echoes
        ledger.merge([fact], w, NOW)
    assert len(ledger.facts()) == 13
    budget = PromptBudget("You are Ada.", 150, tokenizer.count)
    quiet = render_prompt(budget, ledger, "", "", "Lovely weather for a walk.")
    asked = render_prompt(budget, ledger, "", "", "My tooth hurts, where was that dentist?")
    assert "Okafor" not in quiet and "Okafor" in asked  # relevance earns the low one a place
    assert "Anwen keeps bees at home." in asked  # and the most important stays
    assert "Bridge Street." in asked  # whole, never cut


def test_lead_ins_never_nest_and_content_free_summaries_are_rejected() -> None:
    persona = "You are Ada."
    prompt = f"{persona} What you know: Sam said: X. So far: So far: It better."
    assert "So far" not in previous_summary(prompt, persona)
    vetter = Vetter("Ada", persona)
    window = "user: My sister Lena moved to Porto to teach piano. agent: How lovely."
    for empty in ("The user and the assistant had a nice talk about various things.",
                  "So far: It better, you said."):
        vetted = vetter.vet({"summary": empty}, window)
        assert vetted.summary is None and vetted.rejected["content-free"] == 1, empty
    ok = vetter.vet({"summary": "So far: Lena moved to Porto to teach piano."}, window)
    assert ok.summary == "Lena moved to Porto to teach piano."
