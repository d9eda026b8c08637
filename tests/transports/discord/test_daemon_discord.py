"""The daemon end to end with the Discord transport (tiny model, embedded LLM); py-cord's
voice client is replaced at its network boundary only
(tests/transports/discord/loopback_daemon.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from entropi.memory.consent import ConsentStore
from tests.service.conftest import log_events
from tests.transports.discord.conftest import espeak

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent


def _config(daemon):
    return daemon.config(**{"audio.input": "discord", "audio.output": "discord",
                            "discord.guild_id": 1, "discord.channel_id": 2,
                            "window.min_seconds": 2.0, "window.max_seconds": 4.0,
                            "window.pause_seconds": 0.5, "window.grace_seconds": 0.5})


def test_missing_token_is_one_line_before_the_model_loads(daemon):
    _config(daemon)
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_BOT_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "entropi", "run", "--config",
                           str(daemon.dir / "config.yaml")], capture_output=True, text=True,
                          env=env, timeout=60, cwd=daemon.dir)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "discord error: discord.token_env: environment variable DISCORD_BOT_TOKEN is not set; "
        "put the bot token there (never in the config file)"]
    assert "engine_ready" not in proc.stdout + proc.stderr


def test_daemon_hears_two_people_and_writes_only_the_opted_in_one(daemon, tmp_path):
    _config(daemon)
    espeak("Hello Ada, it is Ann. I walked up the big hill today.", tmp_path / "a.wav")
    espeak("Bob speaking. My secret plan involves marmalade.", tmp_path / "b.wav")
    # Ann first (a clear gap: a shared turn would be kept from the files); then Bob talks on
    # and off, so some of it falls in a live window whatever the handovers' timing.
    script = [{"id": 11, "name": "Ann", "wav": str(tmp_path / "a.wav"), "at": 0.5},
              *({"id": 22, "name": "Bob", "wav": str(tmp_path / "b.wav"), "at": at}
                for at in (6.0, 9.5, 13.0, 16.5, 20.0, 23.5))]
    ConsentStore(daemon.dir / "discord_consent.json", False).set(11, "Ann", True)
    out = tmp_path / "sent.json"
    env = {**os.environ, "DISCORD_BOT_TOKEN": "not-used-offline",
           "LOOPBACK_SCRIPT": json.dumps(script), "LOOPBACK_OUT": str(out)}
    with open(daemon.dir / "daemon.log", "w") as log:
        proc = subprocess.run(
            [sys.executable, str(HERE / "loopback_daemon.py"), "run", "--config",
             str(daemon.dir / "config.yaml"), "--summary-json", str(daemon.dir / "summary.json"),
             "--log-format", "json", "--max-windows", "3"],
            stdout=log, stderr=subprocess.STDOUT, env=env, timeout=240, cwd=daemon.dir)
    text = daemon.output()
    assert proc.returncode == 0, text[-3000:]
    s = daemon.summary()
    assert s["windows"] == 3 and s["audio_frames_in"] == s["frames"]
    # py-cord's player read 3840 B every time and sent opus packets for the whole run.
    sent = json.loads(out.read_text())
    assert sent["reads"] == [3840] and sent["packets"] >= s["frames"] * 3
    # Ann's turns are on file under her name; Bob (never opted in) is nowhere on disk.
    transcript = Path(s["transcript_file"]).read_text()
    assert "[user (Ann) spoke" in transcript
    files = [Path(s["transcript_file"]), *(daemon.dir / "journal").rglob("*.md"),
             daemon.dir / "persona_state.json"]
    for f in files:
        body = f.read_text()
        assert "Bob" not in body and "marmalade" not in body, f
    profile = json.loads((daemon.dir / "persona_state.json").read_text())
    ann = next(p for p in profile["people"] if p["name"] == "Ann")
    assert ann["times_talked"] >= 1 and ann["first_seen"]
    # The live window did hear Bob: a window summary was withheld from the files for him.
    assert "(withheld: someone who has not opted in" in transcript
    # entropi status showed channel, present people, opted-in people while running.
    status = json.loads((daemon.dir / "status.json").read_text())
    assert status["discord"]["opted_in"] == ["Ann"] and status["discord"]["channel"] == "loopback"
    assert any(e.get("event") == "window" for e in log_events(text))
    shown = subprocess.run([sys.executable, "-m", "entropi", "status", "--config",
                            str(daemon.dir / "config.yaml")], capture_output=True, text=True,
                           timeout=60, cwd=daemon.dir).stdout
    assert "discord channel: loopback" in shown and "present: Ann, Bob" in shown
    assert "opted in: Ann" in shown
