"""Which voices a web caller may pick: the user's own, then PersonaPlex's 18 presets (out of
the checkpoint's voices.tgz), by name only; and the live feed's history, one call at a time."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from entropi.config import parse_config
from entropi.core.errors import ModelError
from entropi.engine import presets
from entropi.transports.websocket.feed import LiveFeed
from entropi.transports.websocket.protocol import Refused, check_request, list_voices
from tests.engine.test_presets import _archive
from tests.service.conftest import ROOT

PRESETS = [f"{kind}{g}{n}.pt" for kind in ("NAT", "VAR") for g in "FM"
           for n in range(5 if kind == "NAT" else 4)][:18]


def _folders(tmp_path: Path) -> tuple[Path, Path]:
    mine, hub = tmp_path / "voices", tmp_path / "presets"
    mine.mkdir()
    shutil.copy(ROOT / "voices" / "demo_voice.wav", mine / "mine.wav")
    (mine / "NATF0.pt").write_bytes(b"my own NATF0")  # the user's file wins over the preset
    (mine / "notes.txt").write_text("not a voice")
    presets.extract_presets(_archive(tmp_path / "voices.tgz", {
        f"voices/{n}": n.encode() for n in PRESETS}), hub)
    return mine, hub


def _cfg(mine: Path):
    return parse_config(f"voice:\n  prompt_dir: {mine}\n  prompt_file: mine.wav\n"
                        "audio:\n  input: websocket\n  output: websocket\n")


def test_every_preset_is_offered_beside_the_users_voices(tmp_path):
    mine, hub = _folders(tmp_path)
    assert len(PRESETS) == 18 and presets.preset_names(hub) == sorted(PRESETS)
    voices = list_voices((mine, hub))
    names = [n for n, _ in voices]
    assert names[:2] == ["NATF0.pt", "mine.wav"] and sorted(names[2:]) == sorted(PRESETS[1:])
    assert dict(voices)["NATF0.pt"] == mine / "NATF0.pt"
    # PersonaPlex's own web UI sends voice_prompt=NATM1.pt: accepted, from the preset folder.
    cfg = _cfg(mine)
    req = check_request({"voice_prompt": "NATM1.pt"}, cfg, voice_dirs=(mine, hub))
    call = req.config(cfg)
    assert call.voice.prompt_path == hub / "NATM1.pt" and call.voice.prompt_file == "NATM1.pt"
    for bad in ("NOPE.pt", ".complete", "notes.txt", "../presets/NATM1.pt"):
        with pytest.raises(Refused):
            check_request({"voice_prompt": bad}, cfg, voice_dirs=(mine, hub))


def test_presets_come_from_the_archive_once_and_a_failure_only_narrows_the_choice(
        tmp_path, monkeypatch):
    archive = _archive(tmp_path / "voices.tgz", {f"v/{n}": b"x" for n in PRESETS})
    fetched: list[str] = []

    def download(cfg, filename):  # the hub edge
        fetched.append(filename)
        return archive

    monkeypatch.setattr("entropi.engine.checkpoints.download", download)
    mine = tmp_path / "voices"
    cfg = parse_config(f"model:\n  source: hub\n  cache_dir: {tmp_path / 'cache'}\n"
                       f"voice:\n  prompt_dir: {mine}\n  prompt_file: mine.wav\n")
    assert presets.caller_voice_folders(mine, cfg) == (mine, presets.preset_dir(cfg))
    assert presets.caller_voice_folders(mine, cfg) == (mine, presets.preset_dir(cfg))
    assert fetched == ["voices.tgz"] and len(presets.preset_names(presets.preset_dir(cfg))) == 18

    def offline(cfg, filename):
        raise ModelError("voices.tgz: not in the local Hugging Face cache")

    monkeypatch.setattr("entropi.engine.checkpoints.download", offline)
    other = cfg.model_copy(update={"model": cfg.model.model_copy(
        update={"cache_dir": tmp_path / "empty"})})
    assert presets.caller_voice_folders(mine, other) == (mine,)
    tiny = parse_config("model:\n  source: tiny\n")
    assert presets.caller_voice_folders(mine, tiny) == (mine,)


def test_a_configured_preset_loads_from_the_full_extraction(tmp_path, monkeypatch):
    archive = _archive(tmp_path / "voices.tgz", {f"v/{n}": n.encode() for n in PRESETS})
    monkeypatch.setattr("entropi.engine.checkpoints.download", lambda cfg, name: archive)
    cfg = parse_config(f"model:\n  source: hub\n  cache_dir: {tmp_path / 'cache'}\n"
                       f"voice:\n  prompt_dir: {tmp_path / 'none'}\n  prompt_file: VARM2.pt\n")
    assert presets.with_hub_preset(cfg).voice.prompt_path.read_bytes() == b"VARM2.pt"
    monkeypatch.setattr("entropi.engine.checkpoints.download", None)  # no second fetch
    wrong = cfg.model_copy(update={"voice": cfg.voice.model_copy(
        update={"prompt_file": "NOPE0.pt"})})
    with pytest.raises(Exception, match=r"NOPE0\.pt is not among PersonaPlex's presets"):
        presets.with_hub_preset(wrong)


def test_a_new_call_starts_with_an_empty_history():
    async def main() -> tuple[list[str], list[str]]:
        feed = LiveFeed()
        feed.publish("text", text="words of caller one")
        open_page = feed.subscribe()
        first = [(await anext(open_page))["type"]]
        feed.new_call(conversation=2, voice="NATF0.pt")
        first.append((await anext(open_page))["type"])  # the open page is told to clear
        feed.publish("text", text="caller two")
        late = feed.subscribe()  # a page opened during call two
        seen = [(await anext(late))["type"], (await anext(late))["text"]]
        await open_page.aclose()
        await late.aclose()
        return first, seen

    first, seen = asyncio.run(main())
    assert first == ["text", "call_started"]
    assert seen == ["call_started", "caller two"]  # nothing of caller one
