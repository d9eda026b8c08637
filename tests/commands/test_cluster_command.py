"""``entropi cluster`` refuses a config it cannot serve safely with one line and exit 2,
before Ray starts or any model loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from tests.service.conftest import ROOT


@pytest.mark.parametrize(("change", "needle"), [
    ({"server": {"tokens": {"ADA_TOKEN_UNSET_HERE": "ada"}}},
     "server.tokens: environment variable ADA_TOKEN_UNSET_HERE (user ada) is not set"),
    ({"server": {"host": "0.0.0.0"}}, "server.host: 0.0.0.0 is reachable from other machines"),
])
def test_cluster_refuses_missing_tokens_in_one_line(tmp_path, change, needle):
    data = yaml.safe_load((ROOT / "config.demo.yaml").read_text())
    for section, values in change.items():
        data.setdefault(section, {}).update(values)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    env = {k: v for k, v in os.environ.items() if k != "ENTROPI_SERVER_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "entropi", "cluster", "--config", str(path)],
                          capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert not (tmp_path / "state").exists()
