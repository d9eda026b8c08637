"""Config validation: every bad input is one line naming the key path, exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from entropi.config import check_budget, context_budget, load_config, masked_dump, parse_config
from entropi.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

# (name, yaml text, env, expected substrings of the one error line)
BAD = [
    ("literal", "runtime:\n  quantization: int3\n", {},
     ["runtime.quantization:", "'int3' is not one of auto, none, int8, int4, fp8", "line 2"]),
    ("unknown-key-hint", "runtime:\n  quantisation: int8\n", {},
     ["runtime.quantisation:", "unknown key 'quantisation'", "did you mean 'quantization'"]),
    ("unknown-section", "windows:\n  min_seconds: 3\n", {},
     ["windows:", "unknown key 'windows'", "did you mean 'window'"]),
    ("wrong-type", "window:\n  max_seconds: lots\n", {},
     ["window.max_seconds:", "'lots' is not valid", "line 2"]),
    ("out-of-range", "runtime:\n  context_window: 5000\n", {},
     ["runtime.context_window:", "5000 is out of range", "less than or equal to 3000"]),
    ("negative", "window:\n  pause_seconds: -1\n", {},
     ["window.pause_seconds:", "-1 is out of range", "greater than 0"]),
    ("min-over-max", "window:\n  min_seconds: 20\n  max_seconds: 12\n", {},
     ["window:", "min_seconds (20) must not exceed max_seconds (12)"]),
    ("bad-yaml", "runtime:\n  device: [cpu\n", {}, ["unreadable YAML at line", "column"]),
    ("empty", "", {}, ["the file is empty"]),
    ("comments-only", "# nothing here\n", {}, ["the file is empty"]),
    ("not-mapping", "- a\n- b\n", {}, ["top level must be a mapping"]),
    ("unset-env", "secondary_model:\n  base_url: ${LLM_URL}\n", {},
     ["secondary_model.base_url:", "environment variable LLM_URL is not set", "line 2"]),
    ("literal-secret", "secondary_model:\n  api_key: sk-or-v1-abc\n", {},
     ["secondary_model.api_key:", "secrets must come from the environment"]),
    ("device", "runtime:\n  device: tpu\n", {}, ["runtime.device:", "'tpu' is not one of"]),
    ("openai-needs-url", "secondary_model:\n  backend: openai\n", {},
     ["secondary_model:", "needs secondary_model.base_url"]),
    ("wav-needs-path", "audio:\n  input: wav\n", {}, ["audio:", "needs audio.input_wav"]),
    ("local-needs-paths", "model:\n  source: local\n", {},
     ["model:", "model.moshi_weight", "model.tokenizer"]),
    ("list-item", "secondary_model:\n  fallback_models: [a, 3]\n", {},
     ["secondary_model.fallback_models[1]:", "3 is not valid"]),
    ("no-thinking-lines", "voice:\n  thinking_lines: []\n", {},
     ["voice.thinking_lines:", "needs at least one line", "line 2"]),
    ("clip-bounds", "voice:\n  min_clip_seconds: 3\n", {},
     ["voice:", "min_clip_seconds (3) must be below max_clip_seconds (3)"]),
]


@pytest.mark.parametrize("name,text,env,expected", BAD, ids=[b[0] for b in BAD])
def test_bad_config_is_one_clear_line(tmp_path, name, text, env, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env)
    line = info.value.line()
    assert "\n" not in line
    assert line.startswith("config error: ")
    for part in expected:
        assert part in line, f"{part!r} not in {line!r}"


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")


def test_env_expansion_and_default(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("secondary_model:\n  backend: openai\n  base_url: ${URL:-http://x/v1}\n"
                    "  api_key: ${MY_KEY}\n")
    cfg = load_config(path, env={"MY_KEY": "sk-secret-123"})
    assert cfg.secondary_model.base_url == "http://x/v1"
    assert cfg.secondary_model.api_key.get_secret_value() == "sk-secret-123"
    assert "sk-secret-123" not in str(masked_dump(cfg))
    assert "sk-secret-123" not in repr(cfg)


def test_relative_paths_resolve_against_config_dir(tmp_path):
    sub = tmp_path / "etc"
    sub.mkdir()
    (sub / "c.yaml").write_text("memory:\n  journal_dir: j\n")
    cfg = load_config(sub / "c.yaml")
    assert cfg.memory.journal_dir == sub / "j"


def test_frozen():
    cfg = parse_config("runtime:\n  device: cpu\n")
    with pytest.raises(Exception, match="frozen"):
        cfg.runtime.device = "cuda"  # type: ignore[misc]


def test_seed_002_example_budget_is_caught():
    # Seed 002: context_window 187 with a 15 s window; 10 s voice, 150-token prompt.
    cfg = parse_config("runtime:\n  context_window: 187\nwindow:\n  min_seconds: 10\n"
                       "  max_seconds: 15\n  grace_seconds: 0\n"
                       "conversation:\n  prompt_token_budget: 150\n")
    budget = context_budget(cfg)
    assert (budget.voice_frames, budget.silence_frames, budget.prompt_tokens,
            budget.window_frames) == (125, 12, 150, 188)
    assert budget.needed == 475
    with pytest.raises(ConfigError) as info:
        check_budget(cfg)
    line = info.value.line()
    for part in ("runtime.context_window: 187", "125 voice frames", "12 silence",
                 "150 prompt tokens", "188 window frames", "= 475", "context_window >= 475"):
        assert part in line


def test_budget_uses_actual_voice_frames():
    cfg = parse_config("runtime:\n  context_window: 650\n"
                       "conversation:\n  prompt_token_budget: 150\n")
    assert check_budget(cfg, voice_frames=50).needed == 50 + 12 + 150 + 400
    with pytest.raises(ConfigError):
        check_budget(cfg, voice_frames=125)


@pytest.mark.parametrize("name", ["config.yaml", "config.demo.yaml"])
def test_shipped_configs_are_valid(name):
    cfg = load_config(ROOT / name)
    assert check_budget(cfg).fits


def test_every_config_key_is_documented_in_config_yaml():
    """config.yaml documents each key (commented-out secrets included)."""
    from entropi.config import Config

    text = (ROOT / "config.yaml").read_text()
    for section, field in Config.model_fields.items():
        if section == "source_path":
            continue
        assert f"\n{section}:" in text, section
        sub = field.annotation.model_fields  # type: ignore[union-attr]
        for key in sub:
            assert f" {key}:" in text, f"{section}.{key} undocumented in config.yaml"


def test_check_config_subprocess_exit_code(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("runtime:\n  quantization: int3\n")
    proc = subprocess.run([sys.executable, "-m", "entropi", "check-config", "--config", str(path)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "config error: runtime.quantization: 'int3' is not one of auto, none, int8, int4, fp8 "
        "(line 2)"]
