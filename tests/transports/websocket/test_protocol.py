"""The checks on a caller's request and token, without a daemon."""

from __future__ import annotations

import pytest

from entropi.config import parse_config
from entropi.core.errors import ConfigError
from entropi.transports.websocket.protocol import (
    Refused,
    check_request,
    is_loopback,
    server_token,
    token_ok,
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
        server_token(_cfg(host="0.0.0.0"), env={})
    assert server_token(_cfg(host="0.0.0.0"), env={"ENTROPI_SERVER_TOKEN": "s3"}) == "s3"
    assert server_token(_cfg(), env={}) is None
    assert token_ok(None, {}, {})
    assert token_ok("s3", {"token": "s3"}, {})
    assert token_ok("s3", {}, {"Authorization": "Bearer s3"})
    assert token_ok("s3", {}, {"X-Entropi-Token": "s3"})
    assert not token_ok("s3", {"token": "s4"}, {})
    assert not token_ok("s3", {}, {"Authorization": "Basic s3"})


def test_websocket_is_both_ends():
    with pytest.raises(ConfigError, match="both ends"):
        parse_config("audio:\n  input: websocket\n  output: wav\n  output_wav: x.wav\n")
