"""Where the recogniser's model comes from, and the one-line errors when it can't."""

from __future__ import annotations

import pytest

from entropi.config import AsrSection
from entropi.core.errors import ModelError
from entropi.hearing.asr import memory_estimate_mb, model_dir


def test_model_names_resolve_or_fail_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a size name goes to the hub: cache only here
    model = tmp_path / "ct2"
    model.mkdir()
    for name in ("config.json", "model.bin"):
        (model / name).write_bytes(b"x")
    assert model_dir(AsrSection(model=str(model))) == str(model)
    cases = {
        str(tmp_path / "missing"): "no such directory",
        str(tmp_path): "the folder has no config.json",  # a folder, but no model in it
        "base.en": "cannot fetch Systran/faster-whisper-base.en",  # not cached, offline
        "enormous": "neither a directory, a faster-whisper size",
    }
    for model, message in cases.items():
        with pytest.raises(ModelError) as err:
            model_dir(AsrSection(model=model, cache_dir=tmp_path / "hub"))
        assert message in err.value.message and "\n" not in err.value.message


def test_memory_estimates():
    assert memory_estimate_mb(AsrSection(model="small.en", device="cpu")) == 242
    assert memory_estimate_mb(AsrSection(model="Systran/faster-whisper-large-v3", device="cpu",
                                         compute_type="float16")) == 3100
    assert memory_estimate_mb(AsrSection(backend="none")) == 0
