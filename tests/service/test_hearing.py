"""The daemon hears the user: espeak-ng speech with planted facts, recognised by a real
whisper-base (CTranslate2), reaches the compaction request, the transcript file and the
journal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hearing.speech import planted_facts_wav, whisper_base_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def whisper_base(tmp_path_factory) -> Path:
    return whisper_base_dir(tmp_path_factory.mktemp("whisper-base"))


def _asr(model: Path, **extra) -> dict:
    return {"asr.backend": "faster-whisper", "asr.model": str(model), "asr.threads": 1,
            "asr.wait_seconds": 10.0, **extra}


def test_user_words_reach_compaction_transcript_and_journal(daemon, fake_llm, whisper_base):
    wav = planted_facts_wav(daemon.dir / "facts.wav")
    daemon.config(**{"audio.input_wav": str(wav), "window.vad": "energy",
                     "secondary_model.backend": "openai",
                     "secondary_model.base_url": fake_llm.url, "secondary_model.stream": False,
                     **_asr(whisper_base)})
    code, out = daemon.run("--max-windows", "1")
    assert code == 0, out
    assert daemon.summary()["asr_turns"] >= 2
    sent = " ".join(m["content"] for b in fake_llm.bodies
                    for m in json.loads(b)["messages"]).lower()
    assert "user: my cat is called pepper" in sent
    assert "maria" in sent and "sunday" in sent
    transcript = Path(daemon.summary()["transcript_file"]).read_text().lower()
    assert "user: my cat is called pepper" in transcript
    journal = " ".join(p.read_text() for p in (daemon.dir / "journal").rglob("*.md")).lower()
    assert "pepper" in journal


def test_bad_asr_model_is_one_line(daemon, tmp_path):
    daemon.config(**{"asr.backend": "faster-whisper", "asr.model": str(tmp_path / "nope")})
    code, out = daemon.run()
    assert code == 3
    assert "model error: asr.model" in out and "Traceback" not in out, out


def test_kyutai_stt_words_reach_the_transcript(daemon, fake_llm):
    """asr.backend: kyutai on the tiny random STT: the engine's 32-codebook encode feeds it,
    and the user's turns carry its (random) words instead of markers."""
    daemon.config(**{"window.vad": "energy", "secondary_model.backend": "openai",
                     "secondary_model.base_url": fake_llm.url, "secondary_model.stream": False,
                     "asr.backend": "kyutai", "asr.kyutai_source": "tiny",
                     "asr.device": "cpu", "asr.wait_seconds": 2.0})
    code, out = daemon.run("--max-windows", "2")
    assert code == 0, out
    assert '"backend": "kyutai"' in out and '"delay_frames": 6' in out
    assert daemon.summary()["asr_turns"] >= 1
    transcript = Path(daemon.summary()["transcript_file"]).read_text()
    users = [line for line in transcript.splitlines() if line.lower().startswith("user:")]
    assert users and any(len(line) > len("user: ") for line in users), transcript


def test_bad_kyutai_model_is_one_line(daemon):
    daemon.config(**{"asr.backend": "kyutai", "asr.kyutai_repo": "nobody/missing-stt"})
    code, out = daemon.run()
    assert code == 3
    assert "model error: asr.kyutai_repo 'nobody/missing-stt'" in out, out
    assert "Traceback" not in out, out
