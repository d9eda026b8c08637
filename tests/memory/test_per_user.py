"""One memory per person: two callers' conversations at once in one process, each on its
``for_user`` config (memory service, compactor and ledger as a session builds them), windows
interleaved; nothing one of them said reaches the other's prompt, files or retrieval."""

from __future__ import annotations

import asyncio
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from entropi.compaction.compactor import Compactor
from entropi.config import Config, for_user, parse_config
from entropi.memory.journal import Journal
from entropi.memory.ledger import store_for
from entropi.memory.record import WindowRecord
from entropi.memory.service import MemoryService
from entropi.memory.transcript_file import append_window
from entropi.text.tokenizer import TextTokenizer, train_tiny_tokenizer
from entropi.text.utterance import parse_transcript

# Both talk about a sister and a promise, so each one's retrieval query matches the other's
# memories word for word if they ever shared an index.
SAID = {
    "alice": ["user: My sister Lena lives in Porto.\nagent: Porto is lovely.",
              "user: Please remind me to call my dad on Sunday.\nagent: I will remind you.",
              "user: My favourite band is Zebrahead.\nagent: Loud and fun."],
    "bob": ["user: My sister Ola lives in Gdansk.\nagent: Gdansk is lovely.",
            "user: Please remind me to water the ficus on Friday.\nagent: I will remind you.",
            "user: My favourite band is Quixotica.\nagent: Gentle and slow."],
}
# Words only one of them ever says.
OWN = {"alice": ("Lena", "Porto", "dad", "Zebrahead"),
       "bob": ("Ola", "Gdansk", "ficus", "Quixotica")}
T0 = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def count(tmp_path_factory) -> object:
    return TextTokenizer(train_tiny_tokenizer(tmp_path_factory.mktemp("tok") / "t.model")).count


def base_config(tmp_path: Path) -> Config:
    text = ("conversation:\n  prompt_token_budget: 300\n  transcript_file: talk.txt\n"
            "server:\n  tokens: {ALICE_TOKEN: alice, BOB_TOKEN: bob}\n"
            "memory:\n  journal_dir: memory/journal\n  profile_path: memory/persona.json\n"
            "  importance_threshold: 0.0\n  cooldown_seconds: 0\n")
    return parse_config(text, source=str(tmp_path / "config.yaml"), base_dir=tmp_path)


class Conversation:
    """What ``conversation.session.Session`` builds for one caller, minus engine and audio."""

    def __init__(self, cfg: Config, count) -> None:
        self.cfg = cfg
        self.memory = MemoryService(cfg.memory, persona_name=cfg.conversation.persona_name)
        self.compactor = Compactor(None, cfg, count_tokens=count,
                                   ledger_store=store_for(cfg.memory))
        self.prompt = cfg.conversation.first_prompt
        self.prompts: list[str] = []
        self.recalled: list[str] = []

    async def window(self, number: int, text: str) -> None:
        """One window's handover as the controller runs it: recall, compact, persist."""
        said = parse_transcript(text)
        memories = await self.memory.recall(self.compactor.recall_query(said))
        result = await self.compactor.compact(said, memories, self.prompt)
        start = T0 + timedelta(minutes=number)
        self.memory.submit(WindowRecord(number, start, start + timedelta(seconds=30), text,
                                        result.prompt, result.memory))
        await asyncio.to_thread(append_window, self.cfg.conversation.transcript_file, number,
                                start, start + timedelta(seconds=30), said, result.prompt)
        self.recalled.append(memories)
        self.prompt = result.prompt
        self.prompts.append(result.prompt)


async def talk(conv: Conversation, lines: list[str], turn: dict[str, asyncio.Event],
               me: str, other: str) -> None:
    """Windows strictly interleaved with the other caller's: mine, theirs, mine..."""
    await conv.memory.start()
    for number, text in enumerate(lines, 1):
        await turn[me].wait()
        turn[me].clear()
        await conv.window(number, text)
        turn[other].set()
    await conv.memory.write_session_end(f"Session ended after {len(lines)} windows.")
    await conv.memory.stop()


async def both(convs: dict[str, Conversation], lines: dict[str, list[str]]) -> None:
    turn = {"alice": asyncio.Event(), "bob": asyncio.Event()}
    turn["alice"].set()
    await asyncio.gather(talk(convs["alice"], lines["alice"], turn, "alice", "bob"),
                         talk(convs["bob"], lines["bob"], turn, "bob", "alice"))


def everything_written(home: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(home.rglob("*")) if p.is_file())


async def test_two_callers_at_once_never_share_a_memory(tmp_path, count):
    cfg = base_config(tmp_path)
    users = {u: for_user(cfg, u) for u in ("alice", "bob")}
    convs = {u: Conversation(c, count) for u, c in users.items()}
    await both(convs, SAID)

    root = cfg.memory.users_root
    for me, other in (("alice", "bob"), ("bob", "alice")):
        home = root / me
        written = everything_written(home)
        c = users[me]
        # Their own words are in their journal, ledger, transcript and prompts…
        for word in OWN[me]:
            assert word in written, (me, word)
        journal = " ".join(e.text() for e in Journal(c.memory.journal_dir).read_all())
        assert OWN[me][0] in journal and OWN[me][2] in journal
        assert OWN[me][3] in " ".join(i.text for i in store_for(c.memory).load().items)
        assert OWN[me][1] in convs[me].prompts[-1]
        assert OWN[me][2] in c.conversation.transcript_file.read_text()
        # …and nothing the other one said is anywhere of theirs.
        seen = written + "\n".join(convs[me].prompts + convs[me].recalled)
        for word in OWN[other]:  # whole words: "dad" may turn up inside a random entry id
            assert not re.search(rf"\b{word}\b", seen), (me, word)
        # Private: the folders 0700 (made by the first writer), the files 0600.
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        for path in home.rglob("*"):
            want = 0o700 if path.is_dir() else 0o600
            assert stat.S_IMODE(path.stat().st_mode) == want, path
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    # The single-user files are not touched by the users' conversations.
    assert not cfg.memory.journal_dir.exists() and not cfg.memory.profile_path.exists()
    assert not cfg.conversation.transcript_file.exists()

    # Next day, both call again: retrieval finds their own past and only theirs, though
    # each asks about exactly what the other talked about.
    again = {u: Conversation(c, count) for u, c in users.items()}
    questions = {u: ["user: How is my sister doing? Where does she live again?\n"
                     "agent: Let me remember.",
                     "user: Which band do I like, and what should you remind me of?\n"
                     "agent: Let me think."] for u in users}
    await both(again, questions)
    for me, other in (("alice", "bob"), ("bob", "alice")):
        recalled = "\n".join(again[me].recalled)
        assert OWN[me][1] in recalled, (me, recalled)  # retrieval works…
        seen = recalled + "\n".join(again[me].prompts) + everything_written(root / me)
        for word in OWN[other]:  # whole words: "dad" may turn up inside a random entry id
            assert not re.search(rf"\b{word}\b", seen), (me, word)  # …on their own memory only
        direct = users[me]
        probe = MemoryService(direct.memory, persona_name="Ada")
        await probe.start()
        assert not any(w in probe.context_for(" ".join(OWN[other])) for w in OWN[other])
        await probe.stop()
