"""``entropi memory doctor``: find (and with ``--fix`` remove) junk a small LLM left behind.

Profiles and journals written before the gates existed hold people named "I'm happy to help
you.", hobbies in a loop, notes like "santé, santé, …" and summaries that tell the persona it
is the user. The same gates that now guard every LLM output (:mod:`entropi.text.gates`) judge
each stored item; the ledger is checked too.

A journal entry written from a window's transcript holds both speakers ("user (Sam): my blood
type is O negative agent: ☐☐ {…}"): the user's words are judged apart from the agent's, and
an entry whose user words are sound is kept whatever the agent said (a random or confused
model's gibberish must never cost the user's facts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from entropi.memory.entry import JournalEntry
from entropi.memory.heuristics import SUMMARY_WORDS
from entropi.memory.profile import PersonaProfile
from entropi.text.gates import name_reason, text_reason


@dataclass(frozen=True)
class Finding:
    where: str  # "profile.hobbies", "journal <id>", "ledger"
    text: str
    reason: str


def _item_reason(text: str, persona: str) -> str | None:
    return text_reason(text, persona, sentence=False)


def profile_findings(profile: PersonaProfile, persona: str) -> list[Finding]:
    found = []
    for key in ("reflections", "hobbies", "artistic_tastes"):
        for item in getattr(profile, key):
            why = _item_reason(item, persona)
            if why:
                found.append(Finding(f"profile.{key}", item, why))
    for person in profile.people:
        why = name_reason(person.name)
        if why:
            found.append(Finding("profile.people", person.name, why))
            continue
        for note in person.notes:
            why = _item_reason(note, persona)
            if why:
                found.append(Finding(f"profile.people[{person.name}].notes", note, why))
    return found


def clean_profile(profile: PersonaProfile, persona: str) -> PersonaProfile:
    def keep(items: list[str]) -> list[str]:
        return [i for i in items if not _item_reason(i, persona)]

    people = [p.model_copy(update={"notes": keep(p.notes)}) for p in profile.people
              if not name_reason(p.name)]
    return profile.model_copy(update={
        "reflections": keep(profile.reflections), "hobbies": keep(profile.hobbies),
        "artistic_tastes": keep(profile.artistic_tastes), "people": people})


_SPEAKER = re.compile(r"(?:^|\s)(user(?: \([^)]*\))?|agent):\s*", re.IGNORECASE)


def split_speakers(text: str) -> tuple[str, str]:
    """(the user's words, the agent's words) of a transcript-like text; unlabelled text is
    one voice and comes back whole as the first."""
    parts = _SPEAKER.split(text)
    if len(parts) == 1:
        return text, ""
    user, agent = [parts[0]], []
    for label, body in zip(parts[1::2], parts[2::2], strict=True):
        (agent if label.lower() == "agent" else user).append(body)
    return " ".join(" ".join(user).split()), " ".join(" ".join(agent).split())


def entry_reason(entry: JournalEntry, persona: str) -> str | None:
    for text in (entry.summary, *entry.commitments):
        if text.endswith("…") and len(text.split()) == SUMMARY_WORDS:
            text = text.removesuffix("…")  # the heuristic summary's own cut, not junk
        user, agent = split_speakers(text)
        # The user's words decide; the agent's alone only where the user said nothing.
        why = _item_reason(user, persona) if user else _item_reason(agent, persona)
        if why:
            return why
    return None


def journal_findings(entries: list[JournalEntry], persona: str) -> list[Finding]:
    return [Finding(f"journal {e.id}", e.summary, why) for e in entries
            if (why := entry_reason(e, persona))]


def profile_junk_count(profile: PersonaProfile, persona: str) -> int:
    return len(profile_findings(profile, persona))


def ledger_item_reason(text: str, persona: str) -> str | None:
    return text_reason(text, persona)
