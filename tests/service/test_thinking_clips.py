"""The daemon's thinking clips: bundled with one warning naming the command, or the persona's
own, rendered before READY and preferred over the bundled ones."""

from __future__ import annotations

import signal
import time

import pytest

from tests.service.conftest import ROOT, DaemonRun, log_events

pytestmark = pytest.mark.slow


def _start_and_stop_at_ready(daemon: DaemonRun) -> list[dict]:
    """Run until READY (the clips are settled by then), then stop it gracefully."""
    proc = daemon.start()
    try:
        end = time.monotonic() + 120
        while '"event": "ready"' not in daemon.output():
            assert proc.poll() is None, daemon.output()
            assert time.monotonic() < end, daemon.output()
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, daemon.output()
    return log_events(daemon.output())


def _named(events: list[dict], name: str) -> list[dict]:
    return [e for e in events if e.get("event") == name]


def test_bundled_with_warning_then_rendered_clips_preferred(daemon, fake_llm) -> None:
    rendered = daemon.dir / "rendered"
    settings = {"secondary_model.backend": "openai", "secondary_model.base_url": fake_llm.url,
                "voice.rendered_clips_dir": str(rendered), "voice.render.takes": 1,
                "voice.thinking_lines": ["One moment.", "Let me see."]}
    config = daemon.config(**settings, **{"voice.render_clips": "cached"})
    events = _start_and_stop_at_ready(daemon)
    warnings = _named(events, "thinking_clips_bundled")
    assert len(warnings) == 1 and warnings[0]["level"] == "warning"
    assert warnings[0]["fix"] == f"entropi cache-clips --config {config}"
    assert warnings[0]["reason"] == "not rendered yet"
    [used] = _named(events, "thinking_clips")
    assert used["set"] == "bundled" and used["folder"] == str(ROOT / "voices" / "thinking")
    assert not rendered.exists()

    daemon.config(**settings, **{"voice.render_clips": "auto"})
    events = _start_and_stop_at_ready(daemon)
    names = [e.get("event") for e in events]
    assert not _named(events, "thinking_clips_bundled")
    assert len(_named(events, "thinking_clip_rendered")) == 2
    [used] = _named(events, "thinking_clips")
    assert used["set"] == "rendered" and used["folder"] == str(rendered / "demo_voice")
    assert used["clips"] == 2
    # Rendered on the engine after it was ready, and all of it before READY.
    assert names.index("engine_ready") < names.index("thinking_clips_render") < names.index(
        "thinking_clips") < names.index("ready")
    assert _named(events, "ready")[0]["clips"] == 2
