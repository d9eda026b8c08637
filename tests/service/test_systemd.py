"""The systemd unit as installed: it verifies cleanly and keeps state where it may write."""

from __future__ import annotations

import subprocess

import yaml

from entropi.config import load_config
from tests.service.conftest import ROOT

SCRIPT = ROOT / "scripts" / "install-service.sh"


def _render(flag: str) -> str:
    return subprocess.run([str(SCRIPT), flag], check=True, capture_output=True, text=True).stdout


def test_rendered_unit_passes_systemd_analyze_verify(tmp_path):
    unit = tmp_path / "entropi.service"
    unit.write_text(_render("--render"))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (0, "")
    text = unit.read_text()
    for line in ("Type=notify", "WatchdogSec=", "NotifyAccess=main", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "PrivateTmp=yes", "EnvironmentFile=-/etc/entropi",
                 "ReadWritePaths=/var/lib/entropi /var/cache/entropi", "char-nvidia"):
        assert line in text, line
    assert "@ENTROPI_HOME@" not in text
    assert f"ExecStart={ROOT}/.venv/bin/entropi run --config /etc/entropi/config.yaml\n" in text


def test_installed_config_is_valid_and_writes_only_under_read_write_paths(tmp_path):
    rendered = tmp_path / "config.yaml"
    rendered.write_text(_render("--render-config"))
    cfg = load_config(rendered)  # must still validate after the path rewrite
    writable = ("/var/lib/entropi/", "/var/cache/entropi")
    for path in (cfg.memory.journal_dir, cfg.memory.profile_path, cfg.service.status_file,
                 cfg.model.cache_dir):
        assert str(path).startswith(writable), path
    data = yaml.safe_load(rendered.read_text())
    assert data["voice"]["prompt_dir"] == f"{ROOT}/voices"
    # Headless: callers come through the websocket server on loopback, not a sound card.
    assert (cfg.audio.input, cfg.audio.output) == ("websocket", "websocket")
    assert cfg.server.host == "127.0.0.1"


def test_install_links_entropi_on_path_and_checks_the_config_as_the_service_user():
    script = SCRIPT.read_text()
    assert 'ln -sfn "$home/.venv/bin/entropi" /usr/local/bin/entropi' in script
    assert "check-config --config /etc/entropi/config.yaml" in script
    assert "check=(sudo -u entropi env HF_HOME=/var/cache/entropi/huggingface)" in script


def test_unknown_option_is_refused():
    proc = subprocess.run([str(SCRIPT), "--bogus"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown option '--bogus'" in proc.stderr
