"""What a person starting the daemon sees with no TTY (piped, under systemd): plain narration
on stderr from the first second, the page's URL, a human summary; a silent run journals
nothing; the summary's memory figures are read after memory has stopped."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from entropi.audio.wav import write_wav
from tests.service.conftest import ROOT

pytestmark = pytest.mark.slow  # two tiny-model runs, ~30-60 s on 2 cores


def _run(daemon, *args: str) -> subprocess.CompletedProcess[str]:
    # Piped stdout and stderr, console log format (the default): what journald gets.
    return subprocess.run([sys.executable, "-m", "entropi", "run", "--config",
                           str(daemon.dir / "config.yaml"), "--summary-json",
                           str(daemon.dir / "summary.json"), "--fast", *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          cwd=daemon.dir, timeout=240)


def _journal(daemon) -> str:
    return "".join(p.read_text() for p in sorted((daemon.dir / "journal").rglob("*.md")))


def test_narration_summary_and_a_silent_run_that_journals_nothing(daemon):
    daemon.config(**{"conversation.transcript_file": str(daemon.dir / "t.txt")})
    proc = _run(daemon, "--input", str(ROOT / "voices" / "demo_input.wav"), "--max-windows", "1")
    assert proc.returncode == 0, proc.stderr
    said = [line for line in proc.stderr.splitlines() if line.startswith("entropi: ")]
    assert said[0].startswith("entropi: loading the tiny demo model on cpu"), said
    assert any(line.startswith("entropi: ready after ") for line in said), said
    assert said[-1].startswith("entropi: 1 windows, "), said  # the summary, though piped
    assert '{"' not in proc.stderr  # console lines, not JSON, unless logging.format: json
    assert "run_summary" in proc.stderr and "engine_ready" in proc.stderr
    summary = daemon.summary()
    # Read after memory stopped: nothing queued, and the window plus the session's end written.
    assert summary["memory_queued"] == 0 and summary["memory_entries_written"] >= 1
    journal = _journal(daemon)
    assert journal.count("Session ended after") == 1

    silent = daemon.dir / "silent.wav"
    write_wav(silent, np.zeros(24000 * 3, np.float32))  # 3 s: nobody speaks, input ends
    proc = _run(daemon, "--input", str(silent))
    assert proc.returncode == 0, proc.stderr
    assert daemon.summary()["frames"] > 0
    assert _journal(daemon) == journal  # nobody spoke: no entry, not even the session's end
