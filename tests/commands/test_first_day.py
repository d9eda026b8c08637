"""An operator's first day: where the config comes from, what check-config warns about,
`entropi fetch`, `entropi status` after a stop, a closed pipe, the log event names."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from entropi.commands import CONFIG_ENV, config_path
from entropi.commands.check_config import has_nvidia_gpu
from entropi.core.errors import UsageError
from tests.commands.test_cli import ROOT, _with_real_files, entropi


def _offline(tmp_path: Path) -> dict[str, str]:
    """No hub, an empty Hugging Face home (no cache, no saved token), no HF_TOKEN."""
    return {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "HF_TOKEN": "",
            CONFIG_ENV: ""}


def test_config_comes_from_the_flag_then_the_environment_then_etc(tmp_path):
    system = tmp_path / "etc-config.yaml"
    assert config_path(Path("a.yaml"), {CONFIG_ENV: "b.yaml"}, system) == Path("a.yaml")
    assert config_path(None, {CONFIG_ENV: "b.yaml"}, system) == Path("b.yaml")
    with pytest.raises(UsageError, match=r"no config: pass --config PATH, set \$ENTROPI_CONFIG"):
        config_path(None, {}, system)
    system.write_text("")
    assert config_path(None, {}, system) == system


def test_entropi_config_is_used_without_the_flag(tmp_path):
    status = tmp_path / "status.json"
    config = tmp_path / "c.yaml"
    config.write_text(f"service:\n  status_file: {status}\n")
    proc = entropi("status", env={CONFIG_ENV: str(config)})
    assert proc.returncode == 3 and str(status) in proc.stdout, proc.stderr


def test_check_config_warns_about_device_token_and_downloads(tmp_path):
    path = tmp_path / "c.yaml"
    # No recogniser: offline, check-config (= run's preflight) refuses one it cannot load.
    data = _with_real_files({"model": {"source": "hub"}, "asr": {"backend": "none"},
                             "service": {"status_file": str(tmp_path / "s.json")}}, tmp_path)
    path.write_text(yaml.safe_dump(data))
    proc = entropi("check-config", "--config", str(path), env=_offline(tmp_path))
    assert proc.returncode == 0, proc.stderr
    warnings = proc.stderr.splitlines()
    assert any(w.startswith("warning: HF_TOKEN not set: nvidia/personaplex-7b-v1 is gated")
               for w in warnings), warnings
    cached = [w for w in warnings if w.startswith("warning: not cached: ")]
    assert cached and f"entropi fetch --config {path}" in cached[0], warnings
    gb = float(re.search(r"not cached: ([\d.]+) GB", cached[0]).group(1))
    assert gb > 17  # checkpoint + Mimi + presets + Qwen
    assert any("runtime.device: auto → cpu" in w for w in warnings) == (not has_nvidia_gpu())
    # The demo config (tiny model, bundled LLM, no recogniser) has nothing to warn about.
    demo = entropi("check-config", "--config", "config.demo.yaml", "--json",
                   env=_offline(tmp_path))
    assert demo.returncode == 0 and json.loads(demo.stdout)["warnings"] == []


def test_fetch_offline_is_one_line_and_local_files_need_nothing(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_with_real_files({"model": {"source": "hub"}}, tmp_path)))
    proc = entropi("fetch", "--config", str(path), env=_offline(tmp_path))
    assert proc.returncode == 3, proc.stderr
    *progress, error = proc.stderr.strip().splitlines()
    assert progress == ["entropi: [1/6] PersonaPlex weights: "
                        "nvidia/personaplex-7b-v1/model.safetensors (downloading, ~16.74 GB)"]
    assert error.startswith("model error: nvidia/personaplex-7b-v1/model.safetensors: not in "
                            "the local Hugging Face cache and downloads are off")
    assert "Traceback" not in proc.stderr
    local = entropi("fetch", "--config", "config.demo.yaml", env=_offline(tmp_path))
    assert local.returncode == 0, local.stderr
    assert local.stderr.strip() == ("entropi: nothing to fetch: every model this config "
                                    "names is a local file")


def test_status_after_a_clean_stop_says_stopped_in_plain_lines(tmp_path):
    status = tmp_path / "status.json"
    config = tmp_path / "c.yaml"
    config.write_text(f"service:\n  status_file: {status}\n")
    status.write_text(json.dumps({
        "pid": 999999, "updated_at": time.time() - 7200, "state": "stopped", "windows": 4,
        "audio": {"xruns": 0, "dropped_in": 2}, "last_end": "pause",
        "summary": {"windows": 4, "audio_seconds": 28.1, "fallbacks": 1}}))
    proc = entropi("status", "--config", str(config))
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.splitlines()
    assert lines[0] == "stopped: pid 999999 stopped cleanly 2.0 h ago"
    assert "  audio: xruns 0, dropped in 2" in lines
    assert "  last run: windows 4, audio s 28.1, fallbacks 1" in lines
    assert not any(c in proc.stdout for c in "{}[]'")  # no Python reprs
    # A daemon that died mid-talk left "live": not running, exit 3.
    status.write_text(json.dumps({"pid": 999999, "updated_at": time.time(), "state": "live"}))
    died = entropi("status", "--config", str(config))
    assert died.returncode == 3 and died.stdout.startswith("not running: pid 999999 is gone")


def test_a_closed_pipe_ends_quietly():
    # `entropi check-config | head`: here the reader is gone before the first write.
    proc = subprocess.Popen([sys.executable, "-m", "entropi", "check-config", "--config",
                             "config.demo.yaml"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141  # 128 + SIGPIPE, like any Unix tool
    assert err == "", err


def _event_names() -> list[tuple[str, int, str]]:
    """(file, line, name) of every structlog event whose name is a string literal."""
    out = []
    for path in sorted((ROOT / "entropi").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in {"debug", "info", "warning", "error", "exception"}
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "log"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                out.append((path.name, node.lineno, node.args[0].value))
    return out


def test_every_log_event_is_snake_case():
    names = _event_names()
    assert len(names) > 50  # the walk found them
    bad = [n for n in names if not re.fullmatch(r"[a-z][a-z0-9_]*", n[2])]
    assert bad == []
