"""The CLI through real subprocesses, and the README's promises."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from entropi import __version__

ROOT = Path(__file__).resolve().parents[2]


def entropi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "entropi", *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_version():
    proc = entropi("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"entropi {__version__}"


@pytest.mark.parametrize("command", ["run", "check-config", "status", "bench"])
def test_help_for_each_command(command):
    proc = entropi(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert f"entropi {command}" in proc.stdout


def test_unknown_command_is_one_line():
    proc = entropi("fly")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "invalid choice: 'fly'" in proc.stderr


def test_missing_config_is_one_line(tmp_path):
    proc = entropi("check-config", "--config", str(tmp_path / "none.yaml"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"config error: {tmp_path / 'none.yaml'}: no such config file"


def _with_real_files(data: dict, tmp_path) -> dict:
    """check-config checks files too: point the voice and clips at the bundled demo ones."""
    voice = data.setdefault("voice", {})
    voice |= {"prompt_dir": str(ROOT / "voices"), "prompt_file": "demo_voice.wav",
              "thinking_clips": str(ROOT / "voices" / "thinking")}
    memory = data.setdefault("memory", {})
    memory |= {"journal_dir": str(tmp_path / "j"), "profile_path": str(tmp_path / "p.json")}
    return data


def test_check_config_json_masks_secrets(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_with_real_files({
        "secondary_model": {"backend": "openrouter", "api_key": "${OPENROUTER_API_KEY}"},
        "model": {"hf_token": "${HF_TOKEN}"}}, tmp_path)))
    secrets = {"OPENROUTER_API_KEY": "sk-or-v1-supersecret", "HF_TOKEN": "hf_alsosecret"}
    # Online: `run` would fetch base.en first (offline and uncached, both commands refuse it).
    proc = entropi("check-config", "--config", str(path), "--json",
                   env=secrets | {"HF_HUB_OFFLINE": "0"})
    assert proc.returncode == 0, proc.stderr
    for secret in secrets.values():
        assert secret not in proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert data["config"]["secondary_model"]["api_key"] == "********"
    assert data["config"]["model"]["hf_token"] == "********"
    assert data["budget"]["needed"] == 125 + 12 + 300 + 400 and data["budget"]["fits"] is True
    assert set(data["vram_estimate_gb"]) == {"none", "int8", "int4", "fp8"}
    assert data["vram_estimate_gb"]["int4"]["total_gb"] < data["vram_estimate_gb"]["int8"][
        "total_gb"] < data["vram_estimate_gb"]["none"]["total_gb"]


def test_check_config_console_shows_budget_table(tmp_path):
    # The shipped config names PersonaPlex's NATF0.pt, which a fresh checkout lacks: `run`
    # fetches it from the hub's voices.tgz before the model loads, so check-config passes it;
    # any other missing voice file is one line, exit 2.
    online = {"HF_HUB_OFFLINE": "0"}  # base.en is fetched by `run`; offline, both refuse
    proc = entropi("check-config", "--config", "config.yaml", env=online)
    assert proc.returncode == 0, proc.stderr
    missing = tmp_path / "m.yaml"
    missing.write_text(yaml.safe_dump({"voice": {"prompt_dir": str(tmp_path),
                                                 "prompt_file": "mine.wav"}}))
    proc = entropi("check-config", "--config", str(missing))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("config error: voice.prompt_file: ") and \
        "mine.wav: no such voice file" in proc.stderr
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_with_real_files(
        yaml.safe_load((ROOT / "config.yaml").read_text()), tmp_path)))
    proc = entropi("check-config", "--config", str(path), env=online)
    assert proc.returncode == 0, proc.stderr
    assert "context budget" in proc.stdout
    assert re.search(r"needed\s+837", proc.stdout)  # 125 voice + 12 + 300 + 400 frames
    assert "<- selected" in proc.stdout


def test_run_rejects_bad_arguments():
    proc = entropi("run", "--config", "config.demo.yaml", "--max-windows", "0")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "usage error: --max-windows: 0 must be at least 1"
    proc = entropi("run", "--config", "config.demo.yaml", "--fast")
    assert proc.returncode == 2 and "--fast needs --input" in proc.stderr


def test_log_format_json_lines(tmp_path):
    config = tmp_path / "c.yaml"  # its own status file: a demo run may have left one in out/
    config.write_text(f"service:\n  status_file: {tmp_path / 'status.json'}\n")
    proc = entropi("status", "--config", str(config), "--log-format", "json",
                   "--log-level", "debug")
    # no daemon running: exit 3 and a plain message, no traceback
    assert proc.returncode == 3
    assert "not running" in proc.stdout


def _quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_readme_has_exactly_two_commands_and_ci_runs_the_test_one():
    commands = _quick_start_commands()
    assert len(commands) == 2
    demo, tests = commands
    assert "demo" in demo and "test" in tests
    ci = (ROOT / ".ci" / "run").read_text()
    ci_lines = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.startswith("#")]
    assert tests.removeprefix("./") in [ln.removeprefix("./") for ln in ci_lines]
    demo_script = (ROOT / demo).read_text()
    assert "config.demo.yaml" in demo_script and "entropi run" in demo_script
    for cmd in commands:
        assert os.access(ROOT / cmd, os.X_OK), f"{cmd} is not executable"
