"""PersonaPlex voice presets named in the config come out of the hub's voices.tgz: fetched
before any model loads, extracted by file name only, and checked by check-config."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import yaml

from entropi.config import parse_config
from entropi.core.errors import InputError
from entropi.engine import presets


def _archive(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _cfg(tmp_path: Path, source: str = "hub", prompt_file: str = "NATF0.pt"):
    data = {"model": {"source": source, "cache_dir": str(tmp_path / "cache")},
            "voice": {"prompt_dir": str(tmp_path / "voices"), "prompt_file": prompt_file}}
    return parse_config(yaml.safe_dump(data), source="t.yaml", base_dir=tmp_path)


def test_a_missing_preset_is_fetched_once_from_voices_tgz(tmp_path, monkeypatch):
    archive = _archive(tmp_path / "voices.tgz", {"voices/NATF0.pt": b"preset-F0",
                                                 "voices/NATM1.pt": b"preset-M1"})
    fetched: list[str] = []

    def download(cfg, filename):  # the hub edge: huggingface_hub's download
        fetched.append(filename)
        return archive

    monkeypatch.setattr("entropi.engine.checkpoints.download", download)
    cfg = presets.with_hub_preset(_cfg(tmp_path))
    assert cfg.voice.prompt_path.read_bytes() == b"preset-F0"
    assert cfg.voice.prompt_path.parent == presets.preset_dir(cfg)
    again = presets.with_hub_preset(_cfg(tmp_path))
    assert again.voice.prompt_path == cfg.voice.prompt_path
    assert fetched == ["voices.tgz"]  # the second start uses the extracted file


def test_nothing_is_fetched_for_a_present_file_or_a_local_model(tmp_path, monkeypatch):
    def download(cfg, filename):
        raise AssertionError("no download expected")

    monkeypatch.setattr("entropi.engine.checkpoints.download", download)
    (tmp_path / "voices").mkdir()
    (tmp_path / "voices" / "NATF0.pt").write_bytes(b"mine")
    cfg = _cfg(tmp_path)
    assert presets.with_hub_preset(cfg) is cfg
    for other in (_cfg(tmp_path, prompt_file="ada.voice.pt"), _cfg(tmp_path, source="tiny"),
                  _cfg(tmp_path, prompt_file="../NATF0.pt")):
        assert not presets.hub_preset(other)


def test_extraction_uses_the_file_name_only(tmp_path):
    archive = _archive(tmp_path / "v.tgz", {"../../evil/NATF0.pt": b"x", "a/NATM0.pt": b"y"})
    out = presets.extract_preset(archive, "NATF0.pt", tmp_path / "dest")
    assert out == tmp_path / "dest" / "NATF0.pt" and out.read_bytes() == b"x"
    assert not (tmp_path / "evil").exists()


def test_an_unknown_preset_or_a_broken_archive_is_one_clear_line(tmp_path):
    archive = _archive(tmp_path / "v.tgz", {"voices/NATM0.pt": b"y"})
    with pytest.raises(InputError, match=r"NOPE\.pt is not among .*NATM0\.pt"):
        presets.extract_preset(archive, "NOPE.pt", tmp_path / "d")
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(InputError, match="cannot read the voice archive"):
        presets.extract_preset(bad, "NATF0.pt", tmp_path / "d")
