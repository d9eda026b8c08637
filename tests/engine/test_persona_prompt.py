"""The persona reaches the model as "<system> {stripped text} <system>", exactly once tagged."""

from __future__ import annotations

from pathlib import Path

import pytest

from entropi.config import parse_config
from entropi.core.errors import ConfigError
from entropi.engine.prompts import system_text


def _parse(tmp_path: Path, text: str):
    return parse_config(text, source="test.yaml", base_dir=tmp_path, env={})


@pytest.mark.parametrize("key", ["base_persona", "initial_prompt"])
@pytest.mark.parametrize("value", ["<system> You are Ada. <system>", "You are Ada <SYSTEM> hi"])
def test_a_prompt_holding_the_system_tag_is_refused(tmp_path, key, value) -> None:
    with pytest.raises(ConfigError) as err:
        _parse(tmp_path, f"conversation:\n  {key}: '{value}'\n")
    line = err.value.message
    assert f"conversation.{key}" in line and "<system>" in line and "\n" not in line
    assert err.value.exit_code == 2


def test_persona_text_is_stripped(tmp_path) -> None:
    cfg = _parse(tmp_path, 'conversation:\n  base_persona: "  You are Ada.\\n  "\n')
    assert cfg.conversation.base_persona == "You are Ada."
    with pytest.raises(ConfigError, match="empty"):
        _parse(tmp_path, 'conversation:\n  base_persona: "   "\n')


def test_system_text_wraps_stripped_text_and_refuses_a_second_tag() -> None:
    assert system_text("  You are Ada.  ") == "<system> You are Ada. <system>"
    with pytest.raises(ValueError, match="<system>"):
        system_text("You are <system> Ada.")
