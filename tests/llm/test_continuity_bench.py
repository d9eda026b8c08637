"""``bench continuity``: the shipped scripts, the mean, ledger junk, and the audio scorer that
counts on the daemon's own windows whatever a script's phrasing."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import structlog

from entropi.bench.continuity import junk_pct, mean, parse_script
from entropi.bench.continuity.audio import (
    Spoken,
    align,
    assign_plants,
    has,
    normaliser,
    score_audio,
    vocabulary,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _logging_reset_after() -> Iterator[None]:
    """The CLI runs here log onto captured (later closed) streams; a session fixture set up
    by the next test (the llama.cpp server) must not inherit that."""
    yield
    structlog.reset_defaults()


def _shipped() -> dict[str, str]:
    data = resources.files("entropi").joinpath("data")
    return {f.name: f.read_text("utf-8") for f in data.iterdir()
            if f.name.startswith("continuity") and f.name.endswith(".txt")}


def test_shipped_scripts_differ_and_their_agent_never_repeats_a_fact() -> None:
    scripts = {name: parse_script(text, name) for name, text in _shipped().items()}
    assert len(scripts) >= 4 and max(len(w) for w in scripts.values()) >= 120
    speakers = {n: {name for win in w for who, name, _ in win.lines if who == "user"}
                for n, w in scripts.items()}
    assert any(len(s) >= 2 for s in speakers.values())  # a two-speaker script
    for name, windows in scripts.items():
        assert sum(len(w.plants) for w in windows) >= 12, name
        for win in windows:
            agent = " ".join(t.lower() for who, _, t in win.lines if who == "agent")
            said = set(re.findall(r"[a-z0-9']+", agent))
            for _, words in win.plants:
                repeats = [w for w in words if w in said]
                # a promise the agent makes is its own line, not a repetition
                own = any(w in said for w in words) and not any(
                    w in t.lower() for who, _, t in win.lines if who == "user" for w in words)
                assert not repeats or own, (name, words)


def test_mean_and_junk() -> None:
    a = {"windows": 40, "fact_recall_pct_20": 100.0, "wer": None, "mode": {"x": 1}}
    b = {"windows": 120, "fact_recall_pct_20": 50.0, "wer": None, "mode": {"x": 3}}
    assert mean([a, b]) == {"windows": 80.0, "fact_recall_pct_20": 75.0, "wer": None,
                            "mode": {"x": 2.0}}
    windows = parse_script("=== window\nuser: My cat Pepper is nine.\n!fact Pepper\n", "s")
    assert junk_pct(["My cat Pepper is nine.", "I like that idea."], windows) == 50.0
    assert junk_pct([], windows) is None


def test_audio_scorer_counts_on_the_daemons_windows() -> None:
    """Three script lines; the daemon heard the first in its window 0 (spelled its way), lost
    the second in a handover, and heard the third in window 1 with one word wrong."""
    norm = normaliser()
    windows = parse_script(
        "=== window\nuser: My neighbour Tomasz has nine goats.\n!fact Tomasz goats\n"
        "=== window\nuser: Remind me to call the vet on Friday.\n!commitment vet Friday\n"
        "user: The only thing I cook is shakshuka.\n!fact shakshuka\n", "s")
    spoken = assign_plants(windows, norm)
    assert [len(s.plants) for s in spoken] == [1, 1, 1]
    heard = [(["my neighbor tomasz has 9 goats"], "You are Ada. Tomasz has goats."),
             (["the only thing i cook is shakshuka"], "You are Ada. Shakshuka."),
             ([], "You are Ada. Tomasz keeps goats.")]
    out = score_audio(spoken, heard, norm)
    assert out["words_lost"] == 8  # "remind me to call the vet on friday"
    assert out["speech_heard_pct"] == round(100 * 13 / 21, 1)
    assert out["wer"] == round(100 * 8 / 21, 1)  # neighbour/neighbor, nine/9: no error
    assert out["items_planted"] == 3 and out["items_heard"] == 2
    out = score_audio([*spoken[:2], Spoken(1, "The only thing I cook is shakshuka.",
                                           spoken[2].plants)],
                      [heard[0], (["the only thing i cook is shashka"], ""), heard[2]], norm)
    assert out["items_heard"] == 1  # the garbled name is not heard
    assert has("coeliac", vocabulary(["celiac", "disease"]))  # spelling: the same word
    assert has("shakshuka", vocabulary(["shaka", "shuka"]))  # split by the recogniser
    assert not has("tomasz", {"thomas"}) and not has("marek", {"mark"})  # another name
    assert not has("cello", {"channel"})
    # inside a differing stretch, recognised words go to the spoken word they resemble
    assert align(["is", "shakshuka", "i", "will", "watch"], ["in", "shaka", "shuka"]) == [
        [0], [1, 2], [], [], []]


@pytest.mark.slow
def test_bench_continuity_audio_runs_the_real_daemon(tmp_path, capsys) -> None:
    """~2 min on 2 cores: a 3-window script spoken by espeak-ng, whisper-base from the test
    weights, the demo profile's tiny model and SmolLM2."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/system-packages.txt)")
    from entropi.cli import main
    from tests.hearing.speech import whisper_base_dir

    model = whisper_base_dir(tmp_path / "whisper-base")
    config = tmp_path / "config.yaml"
    text = (ROOT / "config.demo.yaml").read_text()
    text = text.replace("./voices", str(ROOT / "voices")).replace(
        "./.cache/entropi", str(tmp_path / "cache"))
    # A handover waits for the recogniser here: 2 shared cores are slower than real time.
    config.write_text(text.replace("asr:\n", "asr:\n  wait_seconds: 10.0\n", 1))
    script = tmp_path / "talk.txt"
    script.write_text("=== window\nuser (Sam): My cat is called Pepper.\n!fact Pepper\n"
                      "agent: Nice.\n=== window\nuser (Sam): It rained all day.\nagent: Oh.\n"
                      "=== window\nuser (Sam): Good night then.\nagent: Bye.\n")
    assert main(["bench", "continuity", "--offline", "--json", "--script", str(script),
                 "--config", str(config), "--audio", "--asr-model", str(model)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    audio = out["mode_audio"]
    assert audio["daemon_exit"] == 0 and audio["windows"] >= 1
    assert audio["items_planted"] == 1 and 0 < out["speech_heard_pct"] <= 100
    assert out["wer"] is not None and out["words_lost"] < 14


def test_audio_without_a_recogniser_is_one_line_before_any_run(tmp_path, capsys) -> None:
    from entropi.cli import main

    script = tmp_path / "talk.txt"
    script.write_text("=== window\nuser: My cat Pepper is nine.\n!fact Pepper\n")
    assert main(["bench", "continuity", "--offline", "--script", str(script), "--audio",
                 "--config", str(ROOT / "config.demo.yaml")]) == 2
    err = capsys.readouterr().err
    assert "asr.backend is none" in err and "--asr-model" in err and "Traceback" not in err
