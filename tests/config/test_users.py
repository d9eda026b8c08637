"""One memory per person: user ids, ``for_user`` paths, the tokens map and the tokens file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from entropi.config import Config, caller_tokens, for_user, known_users, parse_config
from entropi.core.errors import ConfigError
from entropi.memory.consent import consent_path
from entropi.memory.ledger import ledger_path
from tests.service.conftest import DaemonRun

BAD_IDS = ["", "Bob", "../x", "a/b", ".", "..", "-a", "_a", "a" * 65, "a b", "a\x00", "ä",
           "/etc", "a.b", "~root"]
# The files a conversation writes about the person, as the daemon finds them.
PERSONAL = ("journal", "profile", "ledger", "transcript", "consent")


JOURNAL_ONLY = "memory:\n  journal_dir: memory/journal\n"


def personal_files(cfg: Config) -> dict[str, Path | None]:
    return {"journal": cfg.memory.journal_dir, "profile": cfg.memory.profile_path,
            "ledger": ledger_path(cfg.memory.profile_path),
            "transcript": cfg.conversation.transcript_file, "consent": consent_path(cfg)}


def load(tmp_path: Path, text: str) -> Config:
    return parse_config(text, source=str(tmp_path / "config.yaml"), base_dir=tmp_path)


def private_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_for_user_moves_every_personal_file_and_nothing_else(tmp_path):
    cfg = load(tmp_path, "conversation:\n  transcript_file: logs/talk.txt\n"
                         "server:\n  tokens: {ALICE: alice}\n"
                         "memory:\n  journal_dir: memory/journal\n"
                         "  profile_path: memory/persona_state.json\n")
    assert cfg.memory.users_root == tmp_path / "memory" / "users"  # beside the journal
    alice, bob = for_user(cfg, "alice"), for_user(cfg, "bob")
    home = tmp_path / "memory" / "users" / "alice"
    assert personal_files(alice) == {
        "journal": home / "journal", "profile": home / "persona_state.json",
        "ledger": home / "ledger.json", "transcript": home / "talk.txt",
        "consent": home / "discord_consent.json"}
    mine, theirs, owner = (set(personal_files(c).values()) for c in (alice, bob, cfg))
    assert not mine & theirs and not mine & owner and not theirs & owner
    assert for_user(alice, "alice") == alice  # idempotent: a caller may apply it twice
    # Nothing but those paths changes.
    plain = alice.model_dump()
    assert alice.memory.users_root == cfg.memory.users_root
    for section, key in (("memory", "journal_dir"), ("memory", "profile_path"),
                         ("memory", "users_dir"),
                         ("conversation", "transcript_file"), ("discord", "consent_file")):
        plain[section][key] = cfg.model_dump()[section][key]
    assert plain == cfg.model_dump()
    assert not home.exists()  # made 0700 by the first writer, not by looking


def test_no_transcript_stays_none_and_an_explicit_consent_file_follows_the_user(tmp_path):
    cfg = load(tmp_path, "discord:\n  consent_file: /srv/consent.json\n"
                         "memory:\n  users_dir: /srv/people\n")
    alice = for_user(cfg, "alice")
    assert alice.conversation.transcript_file is None
    assert alice.discord.consent_file == Path("/srv/people/alice/consent.json")
    assert alice.memory.journal_dir == Path("/srv/people/alice/journal")


def test_single_user_config_is_unchanged(tmp_path):
    cfg = load(tmp_path, "memory:\n  journal_dir: j\n")
    assert not cfg.server.per_user and cfg.server.tokens == {}
    assert cfg.memory.journal_dir == tmp_path / "j"
    assert cfg.memory.users_root == tmp_path / "users"


@pytest.mark.parametrize("user_id", BAD_IDS)
def test_a_user_id_is_a_plain_name_never_a_path(tmp_path, user_id):
    cfg = load(tmp_path, JOURNAL_ONLY)
    with pytest.raises(ConfigError, match="must be 1 to 64 of a-z"):
        for_user(cfg, user_id)
    with pytest.raises(ConfigError, match=r"^server\.tokens\.T: user id .* names a folder"):
        load(tmp_path, f"server:\n  tokens: {{T: {user_id!r}}}\n")


def test_good_user_ids(tmp_path):
    cfg = load(tmp_path, JOURNAL_ONLY)
    for user_id in ("a", "0", "alice", "bob-2", "c_d", "z" * 64):
        assert for_user(cfg, user_id).memory.journal_dir.parent.name == user_id


def test_tokens_map_reads_the_variables(tmp_path):
    cfg = load(tmp_path, "server:\n  tokens: {ALICE: alice, ALICE_PHONE: alice, BOB: bob}\n")
    env = {"ALICE": "t-a1", "ALICE_PHONE": "t-a2", "BOB": "t-b"}
    assert caller_tokens(cfg, env) == {"t-a1": "alice", "t-a2": "alice", "t-b": "bob"}
    with pytest.raises(ConfigError, match=r"the same token as server\.tokens: ALICE") as err:
        caller_tokens(cfg, {**env, "BOB": "t-a1"})
    assert "t-a1" not in str(err.value)
    with pytest.raises(ConfigError, match="keys are the names of environment variables"):
        load(tmp_path, "server:\n  tokens: {'tok3n-with-dash': alice}\n")


def test_tokens_file(tmp_path):
    private_file(tmp_path / "tokens", "# who may call\n\n  s3cret-a  alice\ns3cret-b bob  \n"
                                      "#s3cret-c carol\n")
    cfg = load(tmp_path, "server:\n  tokens_file: tokens\n  tokens: {CAROL: carol}\n")
    assert cfg.server.per_user
    assert caller_tokens(cfg, {"CAROL": "s3cret-c"}) == {
        "s3cret-c": "carol", "s3cret-a": "alice", "s3cret-b": "bob"}


@pytest.mark.parametrize(("text", "mode", "message"), [
    ("K3yQ alice\n", 0o644, r"mode 0644 lets others read the tokens; run chmod 600"),
    ("K3yQ alice\n", 0o640, r"mode 0640 lets others read"),
    ("K3yQ alice\nK3yR\n", 0o600, r"line 2: expected 'TOKEN USER_ID' \(two words\), "
                                          "found 1"),
    ("K3yQ alice K3yS\n", 0o600, r"line 1: expected .* found 3"),
    ("K3yQ alice\nK3yQ bob\n", 0o600, r"line 2 \(user bob\): the same token as .*line 1 "
                                    r"\(user alice\)"),
    ("K3yQ ../alice\n", 0o600, r"line 1: user id '../alice' must be"),
    (b"K3yQ \xff\n", 0o600, "not UTF-8"),
])
def test_bad_tokens_files_are_refused_without_showing_a_token(tmp_path, text, mode, message):
    path = tmp_path / "tokens"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    os.chmod(path, mode)
    cfg = load(tmp_path, "server:\n  tokens_file: tokens\n")
    with pytest.raises(ConfigError, match=message) as err:
        caller_tokens(cfg, {})
    assert str(err.value).startswith(f"server.tokens_file: {path}")
    assert "K3y" not in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_or_linked_tokens_file(tmp_path):
    cfg = load(tmp_path, "server:\n  tokens_file: tokens\n")
    with pytest.raises(ConfigError, match="no such file; create it \\(chmod 600\\)"):
        caller_tokens(cfg, {})
    private_file(tmp_path / "real", "tok alice\n")
    (tmp_path / "tokens").symlink_to(tmp_path / "real")
    with pytest.raises(ConfigError, match="cannot open"):  # a link could point anywhere
        caller_tokens(cfg, {})


JOURNAL = "  journal_dir: memory/journal\n"


@pytest.mark.parametrize(("memory", "message"), [
    ("  users_dir: memory/journal/people\n", "must not hold one another"),
    ("  users_dir: memory\n", "must not hold one another"),
    ("  profile_path: memory/users/state.json\n", "memory.profile_path .* is inside"),
])
def test_users_folders_never_overlap_the_single_user_files(tmp_path, memory, message):
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, f"server:\n  tokens: {{A: alice}}\nmemory:\n{memory}{JOURNAL}")
    load(tmp_path, f"memory:\n{memory}{JOURNAL}")  # without users there is nothing to overlap


def test_known_users_lists_valid_folders_only(tmp_path):
    cfg = load(tmp_path, "memory:\n  users_dir: people\n")
    root = cfg.memory.users_root
    for name in ("bob", "alice", "Not-A-User", ".hidden"):
        (root / name).mkdir(parents=True)
    (root / "file").write_text("x")
    assert known_users(cfg) == ["alice", "bob"]
    assert known_users(load(tmp_path, "memory:\n  users_dir: nowhere\n")) == []


def test_check_config_and_run_refuse_a_readable_tokens_file_before_loading(tmp_path):
    tokens = private_file(tmp_path / "tokens", "K3yQ alice\n", mode=0o644)
    config = DaemonRun(tmp_path, tmp_path / "cache").config(**{
        "audio.input": "websocket", "audio.output": "websocket",
        "server.tokens_file": str(tokens)})
    for command in ("check-config", "run"):
        out = subprocess.run([sys.executable, "-m", "entropi", command, "--config", str(config)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 2, out.stderr
        assert out.stderr == (f"config error: server.tokens_file: {tokens}: mode 0644 lets "
                              f"others read the tokens; run chmod 600 {tokens}\n")
    assert not (tmp_path / "cache").exists()  # nothing loaded, no model generated


def test_check_config_refuses_a_users_dir_it_cannot_write(tmp_path):
    (tmp_path / "people").write_text("a file, not a folder")
    tokens = private_file(tmp_path / "tokens", "K3yQ alice\n")
    config = DaemonRun(tmp_path, tmp_path / "cache").config(**{
        "audio.input": "websocket", "audio.output": "websocket",
        "server.tokens_file": str(tokens), "memory.users_dir": str(tmp_path / "people")})
    out = subprocess.run([sys.executable, "-m", "entropi", "check-config", "--config",
                          str(config)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr == (f"config error: memory.users_dir: {tmp_path / 'people'} is not a "
                          "folder; give a folder path\n")
