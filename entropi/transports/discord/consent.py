"""Who may be remembered: the consent roster and the three slash commands behind it.

``discord_consent.json`` (beside the persona profile, 0600, rewritten atomically) maps a
Discord user id to their display name and choice. With ``discord.consent: opt_in`` (the
default) a person is remembered only after ``/remember-me``; with ``opt_out`` everyone is
until ``/forget-me``. The words and names of people who are not remembered serve the live
window only: ``ConsentGate`` strips them from everything written to disk.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from entropi.config import Config
from entropi.core.crypto import cipher_from_env
from entropi.memory.consent import ConsentStore, Persisted
from entropi.memory.forget import forget_person, known_about, person_pattern
from entropi.memory.journal import Journal
from entropi.memory.profile import ProfileStore
from entropi.text.utterance import Utterance

WITHHELD_PROMPT = "(withheld: someone who has not opted in to being remembered spoke)"
SOMEONE = "someone"


class ConsentGate:
    """Filters a finished window for the files, knowing which display name is which user."""

    def __init__(self, store: ConsentStore) -> None:
        self.store = store
        self._ids: dict[str, int] = {}  # display name → user id, as heard this session
        self._lock = threading.Lock()

    def heard(self, user_id: int, name: str) -> None:
        with self._lock:
            self._ids[name] = user_id

    def _remembered(self, name: str) -> bool:
        with self._lock:
            uid = self._ids.get(name)
        return uid is not None and self.store.remembers(uid)

    def _not_remembered(self) -> list[str]:
        with self._lock:
            names = list(self._ids)
        return [n for n in names if not self._remembered(n)]

    def persisted(self, utterances: list[Utterance], prompt: str,
                  directive: dict[str, Any] | None) -> Persisted:
        kept: list[Utterance] = []
        private = False
        people: list[str] = []
        for u in utterances:
            names = [n.strip() for n in (u.name or "").split(",") if n.strip()]
            if u.speaker == "user" and names and not all(map(self._remembered, names)):
                private = True  # their turn (words and name) stays in the live window
                continue
            if u.speaker == "user":
                people += [n for n in names if n not in people]
            kept.append(u)
        if private:
            # The compactor's summary and memory directive were made from the whole window.
            return Persisted(kept, WITHHELD_PROMPT, None, tuple(people))
        hidden = self._not_remembered()
        return Persisted(kept, scrub(prompt, hidden), scrub_directive(directive, hidden),
                         tuple(people))


def scrub(text: str, names: list[str]) -> str:
    """Earlier windows' summaries may still name people who did not opt in."""
    for name in names:
        text = person_pattern(name).sub(SOMEONE, text)
    return text


def scrub_directive(directive: dict[str, Any] | None,
                    names: list[str]) -> dict[str, Any] | None:
    if directive is None or not names:
        return directive
    update = directive.get("profile_update")
    if isinstance(update, dict) and isinstance(update.get("people"), list):
        keys = {n.casefold() for n in names}
        update = {**update, "people": [p for p in update["people"] if not (
            isinstance(p, dict) and str(p.get("name", "")).casefold() in keys)]}
        directive = {**directive, "profile_update": update}
    return json.loads(scrub(json.dumps(directive), names))


# --------------------------------------------------------------------------- commands


class ConsentCommands:
    """What ``/remember-me``, ``/forget-me`` and ``/what-do-you-know`` do (blocking file
    work: the bot runs these in a thread); each returns the text answer."""

    def __init__(self, cfg: Config, store: ConsentStore) -> None:
        self.cfg = cfg
        self.store = store

    def _files(self) -> tuple[Journal, ProfileStore]:
        cipher = cipher_from_env(self.cfg.memory.encryption_key_env)
        return (Journal(self.cfg.memory.journal_dir, cipher),
                ProfileStore(self.cfg.memory.profile_path, self.cfg.conversation.persona_name,
                             cipher))

    def remember_me(self, user_id: int, name: str) -> str:
        self.store.set(user_id, name, True)
        return (f"Thanks {name}: from now on I will remember our conversations "
                "(/forget-me deletes it all).")

    def forget_me(self, user_id: int, name: str) -> str:
        self.store.set(user_id, name, False)
        if not self.cfg.memory.enabled:
            return f"Done, {name}: I keep no memory at all here."
        journal, profile = self._files()
        known = known_about(journal, profile, name)
        removed = forget_person(journal, profile, name, known.in_profile)
        return (f"Done, {name}: I deleted {removed} journal entries about you"
                + (" and your place in my list of people" if known.in_profile else "")
                + ", and I will not remember you from now on.")

    def what_do_you_know(self, user_id: int, name: str) -> str:
        remembered = self.store.remembers(user_id)
        head = (f"I remember our conversations, {name}." if remembered else
                f"I do not keep memories of you, {name} (/remember-me to change that).")
        if not self.cfg.memory.enabled:
            return head
        journal, profile = self._files()
        known = known_about(journal, profile, name)
        lines = [head]
        if known.person is not None:
            p = known.person
            lines.append(f"We have talked in {p.times_talked} windows"
                         + (f", first on {p.first_seen:%Y-%m-%d}" if p.first_seen else "")
                         + (f", last on {p.last_seen:%Y-%m-%d}" if p.last_seen else "") + ".")
            lines += [f"Note: {n}" for n in p.notes]
        lines += [f"{e.timestamp:%Y-%m-%d}: {e.summary}" for e in known.entries[-10:]]
        if len(lines) == 1 and remembered:
            lines.append("Nothing is written down about you yet.")
        return "\n".join(lines)[:1900]  # Discord's message limit is 2000 characters
