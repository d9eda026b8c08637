"""The real daemon, end to end: windows, clips, compaction, memory, signals, systemd."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pytest

from entropi.audio.wav import read_wav
from entropi.core.constants import FRAME_SIZE
from tests.service.conftest import ROOT, log_events

pytestmark = pytest.mark.slow


def _windows(events):
    return [e for e in events if e.get("event") == "window"]


def test_five_windows_with_embedded_llm(daemon):
    """Windows rotate at pauses, a clip plays at every handover, prompts change, memory lands."""
    daemon.config()
    code, out = daemon.run("--max-windows", "5")
    assert code == 0, out
    s = daemon.summary()
    assert s["windows"] == 5
    # Fast mode: total dead air depends on this machine's model speed; the loop's own is 0.
    assert s["loop_dead_air_frames"] == 0
    assert s["clips_played"] >= 5
    windows = _windows(log_events(out))
    assert [w["window"] for w in windows] == [1, 2, 3, 4, 5]
    assert all(w["handover_frames"] > 0 for w in windows)
    assert {w["end"] for w in windows} <= {"pause", "max", "forced"}
    assert any(w["end"] == "pause" for w in windows), "no window ended at a natural pause"
    # Compaction started speculatively as the pause began, not only near max_seconds.
    assert any(w["speculative"] and w["end"] == "pause" for w in windows)
    # The engine is re-primed after every compaction, and the rolling summary moves on. (A
    # window in which nothing new was said may legitimately keep the previous summary.)
    primes = [e for e in log_events(out) if e.get("event") == "primed"]
    assert [p["window"] for p in primes] == [1, 2, 3, 4, 5, 6]
    # Prompts move on with what was said; a window of user markers only (the random model
    # may say nothing) adds nothing, and nothing is invented from it.
    said = [line for line in Path(s["transcript_file"]).read_text().splitlines()
            if line.startswith(("agent:", "user:", "user ("))]
    assert s["distinct_prompts"] >= (3 if said else 1)
    # Output: one frame out per frame in.
    pcm = read_wav(daemon.dir / "out.wav")
    assert len(pcm) == s["frames"] * FRAME_SIZE
    assert float(np.abs(pcm).max()) > 0
    # The session transcript: every window, its words and markers, and the prompt it led to.
    transcript = Path(s["transcript_file"])
    assert transcript.parent == daemon.dir / "out" and transcript.stat().st_mode & 0o777 == 0o600
    text = transcript.read_text()
    assert [int(line.split()[2]) for line in text.splitlines() if line.startswith("## window")] \
        == [1, 2, 3, 4, 5]
    prompts = [line for line in text.splitlines() if line.startswith("next prompt: ")]
    assert len(prompts) == 5 and all("You are Ada, a calm companion." in p for p in prompts)
    # Journal and profile written.
    days = list((daemon.dir / "journal").rglob("*.md"))
    assert days and "window" in days[0].read_text().lower()
    assert (daemon.dir / "persona_state.json").exists()


@pytest.mark.parametrize("llm", ["down", "hanging"])
def test_windows_rotate_on_fallback_when_llm_fails(daemon, llm, closed_port, hanging_llm):
    url = f"http://127.0.0.1:{closed_port}/v1" if llm == "down" else hanging_llm.url
    daemon.config(**{"secondary_model.backend": "openai", "secondary_model.base_url": url,
                     "secondary_model.deadline_seconds": 1.0, "secondary_model.stream": False})
    code, out = daemon.run("--max-windows", "3")
    assert code == 0, out
    s = daemon.summary()
    assert s["windows"] == 3
    assert s["fallbacks"] == 3
    assert s["loop_dead_air_frames"] == 0  # fast mode: the model's speed is not the point
    assert all(w["fallback"] for w in _windows(log_events(out)))


def test_sigterm_mid_window_and_sd_notify(daemon, fake_llm, notify_socket):
    path, messages = notify_socket
    daemon.config(**{"secondary_model.backend": "openai", "secondary_model.base_url": fake_llm.url,
                     "secondary_model.stream": False, "audio.fast": False,
                     "service.watchdog": True, "service.stop_timeout_seconds": 10})
    proc = daemon.start(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    try:
        daemon.wait_status(lambda st: st.get("state") == "live" and st.get("frames", 0) > 10,
                           proc=proc)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, daemon.output()
    assert time.monotonic() - t0 < 10
    time.sleep(0.3)
    joined = "\n".join(messages)
    assert any(m.startswith("READY=1") for m in messages), joined
    assert any(m.startswith("STATUS=window 1 live") for m in messages), joined
    assert "WATCHDOG=1" in messages, joined
    assert "STOPPING=1" in messages, joined
    s = daemon.summary()
    assert s["memory_entries_written"] >= 1  # the session's last entry at least
    text = "".join(p.read_text() for p in (daemon.dir / "journal").rglob("*.md"))
    assert "Session ended" in text
    assert daemon.status()["state"] == "stopped"


def test_sigkill_then_next_start_recovers(daemon, fake_llm):
    daemon.config(**{"secondary_model.backend": "openai", "secondary_model.base_url": fake_llm.url,
                     "secondary_model.stream": False})
    proc = daemon.start()
    try:
        daemon.wait_status(lambda st: st.get("windows", 0) >= 1, proc=proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    from entropi.memory.journal import read_all_entries  # parses every day file strictly

    # What the killed run wrote (the fake LLM's content-free summaries are rejected by the
    # gates, so possibly nothing) must parse and survive the next run.
    before = read_all_entries(daemon.dir / "journal")
    code, out = daemon.run("--max-windows", "2")
    assert code == 0, out
    assert daemon.summary()["windows"] == 2
    after = read_all_entries(daemon.dir / "journal")
    assert [e.id for e in after[:len(before)]] == [e.id for e in before]
    assert any(e.summary.startswith("Session ended") for e in after[len(before):])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_soak_100_windows_memory_flat(daemon, fake_llm, tmp_path):
    """≥100 windows in fast mode: resident memory flat within 5 % after warm-up."""
    from entropi.audio.wav import write_wav

    long_input = tmp_path / "long.wav"
    src = read_wav(ROOT / "voices" / "demo_input.wav")
    write_wav(long_input, np.tile(src, 8))
    daemon.config(**{"secondary_model.backend": "openai", "secondary_model.base_url": fake_llm.url,
                     "secondary_model.stream": False, "audio.input_wav": str(long_input),
                     "window.min_seconds": 1.0, "window.max_seconds": 2.0,
                     "window.grace_seconds": 0.5, "window.pause_seconds": 0.3,
                     "memory.enabled": False})
    proc = daemon.start("--max-windows", "105")
    try:
        daemon.wait_status(lambda st: st.get("windows", 0) >= 20, timeout=300, proc=proc)
        rss_early = _rss_kib(proc.pid)
        daemon.wait_status(lambda st: st.get("windows", 0) >= 100, timeout=400, proc=proc)
        rss_late = _rss_kib(proc.pid)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, daemon.output()
    assert daemon.summary()["windows"] == 105
    assert daemon.summary()["loop_dead_air_frames"] == 0
    assert rss_late <= rss_early * 1.05, (rss_early, rss_late)
