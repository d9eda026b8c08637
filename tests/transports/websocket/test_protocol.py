"""The checks on a caller's request and token, without a daemon."""

from __future__ import annotations

import os

import pytest

from entropi.config import parse_config
from entropi.core.errors import ConfigError
from entropi.core.logs import redact
from entropi.transports.websocket.protocol import (
    Access,
    Caller,
    Refused,
    check_request,
    is_loopback,
)
from tests.service.conftest import ROOT


def _cfg(**server):
    lines = "\n".join(f"  {k}: {v}" for k, v in server.items())
    text = (f"voice:\n  prompt_dir: {ROOT / 'voices'}\n  prompt_file: demo_voice.wav\n"
            "audio:\n  input: websocket\n  output: websocket\n"
            + (f"server:\n{lines}\n" if server else ""))
    return parse_config(text)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "..", ".hidden",
                                  "sub/demo_voice.wav", "a\\b.wav", "missing.wav",
                                  "voices/demo_voice.wav", "../voices/demo_voice.wav",
                                  "demo_voice.wav\x00", "README.md", "thinking",
                                  "DEMO_VOICE.WAV"])
def test_voice_prompt_must_name_a_voice_file_in_the_folder(name):
    with pytest.raises(Refused):
        check_request({"voice_prompt": name}, _cfg())


def test_voice_prompt_picks_any_voice_in_the_folder_by_listing_it():
    cfg = _cfg()
    req = check_request({"voice_prompt": "demo_input.wav"}, cfg)
    assert req.voice == ROOT / "voices" / "demo_input.wav"
    assert req.config(cfg).voice.prompt_file == "demo_input.wav"
    assert check_request({}, cfg).voice is None and check_request({}, cfg).config(cfg) is cfg


def test_text_prompt_only_when_allowed_and_sampling_params_ignored():
    req = check_request({"voice_prompt": "demo_voice.wav", "text_prompt": "Be Bob.",
                         "audio_temperature": "0.1"}, _cfg())
    assert req.text_prompt is None and req.ignored == ("audio_temperature", "text_prompt")
    cfg = _cfg(allow_text_prompt="true")
    req = check_request({"text_prompt": "  You are Bob.  "}, cfg)
    assert req.config(cfg).conversation.first_prompt == "You are Bob."
    with pytest.raises(Refused):
        check_request({"text_prompt": "x" * 2001}, cfg)


def test_token_rules():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    with pytest.raises(ConfigError, match="ENTROPI_SERVER_TOKEN"):
        Access.load(_cfg(host="0.0.0.0"), env={})
    owner = Access.load(_cfg(host="0.0.0.0"), env={"ENTROPI_SERVER_TOKEN": "s3"})
    assert Access.load(_cfg(), env={}).caller({}, {}) == Caller(None, owner=True)  # loopback
    me = Caller(None, owner=True)
    assert owner.caller({"token": "s3"}, {}) == me
    assert owner.caller({}, {"Authorization": "Bearer s3"}) == me
    assert owner.caller({}, {"X-Entropi-Token": "s3"}) == me
    assert owner.caller({"token": "s4"}, {}) is None
    assert owner.caller({}, {"Authorization": "Basic s3"}) is None
    assert owner.caller({}, {}) is None


def test_each_token_names_its_user_and_unknown_tokens_are_refused():
    cfg = _cfg(host="0.0.0.0", tokens="{ALICE_TOKEN: alice, BOB_TOKEN: bob}")
    env = {"ALICE_TOKEN": "a-secret", "BOB_TOKEN": "b-secret"}
    access = Access.load(cfg, env)  # users' tokens alone may guard a public bind
    assert access.caller({"token": "a-secret"}, {}) == Caller("alice", owner=False)
    assert access.caller({}, {"Authorization": "Bearer b-secret"}) == Caller("bob", owner=False)
    for wrong in ("", "a-secre", "a-secret ", "b-secretx", "ALICE_TOKEN", "alice"):
        assert access.caller({"token": wrong}, {}) is None, wrong
    both = Access.load(cfg, {**env, "ENTROPI_SERVER_TOKEN": "owner"})
    assert both.caller({"token": "owner"}, {}) == Caller(None, owner=True)
    assert both.caller({"token": "a-secret"}, {}).user_id == "alice"
    with pytest.raises(ConfigError, match=r"^server.token_env: .* user bob's token too"):
        Access.load(cfg, {**env, "ENTROPI_SERVER_TOKEN": "b-secret"})
    with pytest.raises(ConfigError, match="BOB_TOKEN \\(user bob\\) is not set"):
        Access.load(cfg, {"ALICE_TOKEN": "a-secret"})
    # With users, a loopback bind needs a token too: no token is nobody, not the owner.
    local = Access.load(_cfg(tokens="{ALICE_TOKEN: alice}"), env)
    assert local.caller({}, {}) is None


def test_tokens_file_callers_and_their_tokens_never_reach_a_log(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("# people\nfile-t0ken-carol carol\n")
    os.chmod(path, 0o600)
    access = Access.load(_cfg(host="0.0.0.0", tokens_file=str(path)), env={})
    assert access.caller({}, {"X-Entropi-Token": "file-t0ken-carol"}) == Caller("carol", False)
    assert access.caller({"token": "carol"}, {}) is None
    assert "file-t0ken-carol" not in redact("a line with file-t0ken-carol in it")
    path.write_text("# nobody yet\n")
    with pytest.raises(ConfigError, match="has no 'TOKEN USER_ID' line"):  # not: open to all
        Access.load(_cfg(tokens_file=str(path)), env={})


def test_the_call_request_carries_the_user_and_their_own_files(tmp_path):
    cfg = _cfg(tokens="{ALICE_TOKEN: alice}")
    req = check_request({"voice_prompt": "demo_input.wav"}, cfg, user_id="alice")
    call = req.config(cfg)
    home = cfg.memory.users_root / "alice"
    assert req.user_id == "alice" and call.voice.prompt_file == "demo_input.wav"
    assert call.memory.journal_dir == home / "journal"
    assert call.memory.profile_path.parent == home
    assert check_request({}, cfg).config(cfg).memory == cfg.memory  # the owner's files


def test_websocket_is_both_ends():
    with pytest.raises(ConfigError, match="both ends"):
        parse_config("audio:\n  input: websocket\n  output: wav\n  output_wav: x.wav\n")
