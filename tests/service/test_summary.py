"""The end-of-run summary a person sees on a terminal."""

from __future__ import annotations

from entropi.service.daemon import human_summary


def test_human_summary_names_every_output_that_exists():
    text = human_summary({"windows": 4, "audio_seconds": 28.08, "wall_seconds": 18.2,
                          "dead_air_frames": 0, "fallbacks": 1, "handover_ms_p50": 2113.6,
                          "output_wav": "/x/out.wav", "transcript_file": "/x/t.txt",
                          "journal_dir": None, "profile_path": "/x/p.json"})
    lines = text.splitlines()
    assert lines[0].startswith("entropi: 4 windows, 28.1 s of audio in 18.2 s; dead air 0")
    assert [line.split()[0] for line in lines[1:]] == ["output", "transcript", "profile"]
    assert lines[2].endswith("/x/t.txt") and "journal" not in text
