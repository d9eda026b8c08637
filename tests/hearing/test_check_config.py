"""check-config shows the recogniser beside the engine, without loading it."""

from __future__ import annotations

import json

import yaml

from tests.commands.test_cli import _with_real_files
from tests.commands.test_cli import entropi as _entropi


def entropi(*args: str):
    # Online: `run` fetches the recogniser (offline and uncached, both commands refuse it).
    return _entropi(*args, env={"HF_HUB_OFFLINE": "0"})


def test_check_config_shows_the_asr_model(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_with_real_files(
        {"asr": {"model": "small.en", "device": "cpu"}}, tmp_path)))
    data = json.loads(entropi("check-config", "--config", str(path), "--json").stdout)
    assert data["asr"] == {"backend": "faster-whisper", "model": "small.en", "device": "cpu",
                           "compute_type": "int8", "memory_mb": 242}
    text = entropi("check-config", "--config", str(path)).stdout
    assert "faster-whisper small.en on cpu int8, about 242 MB" in text
    path.write_text(yaml.safe_dump(_with_real_files({"asr": {"backend": "none"}}, tmp_path)))
    assert "markers" in entropi("check-config", "--config", str(path)).stdout


def test_check_config_shows_kyutai_with_its_memory(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_with_real_files(
        {"asr": {"backend": "kyutai", "device": "cuda"}}, tmp_path)))
    data = json.loads(entropi("check-config", "--config", str(path), "--json").stdout)
    assert data["asr"] == {"backend": "kyutai", "model": "kyutai/stt-1b-en_fr",
                           "device": "cuda", "compute_type": "bfloat16", "memory_mb": 2500}
    text = entropi("check-config", "--config", str(path)).stdout
    assert "kyutai kyutai/stt-1b-en_fr on cuda bfloat16, about 2500 MB (GPU memory)" in text
