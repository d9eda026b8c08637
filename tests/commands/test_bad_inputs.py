"""The audit's bad configs and files: each one gets one line and exit 2 from both
``check-config`` and ``run``, before any model loads.

Every case starts from config.demo.yaml with its paths pointed into the test's folder, then
breaks one thing. ``run`` is called with the daemon replaced by a tripwire: reaching it means
the mistake would only have been found after loading the model.
"""

from __future__ import annotations

import logging
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import structlog
import yaml

from entropi import cli

ROOT = Path(__file__).resolve().parents[2]


def wav_bytes(rate: int, samples: int = 2400, channels: int = 1, bits: int = 16,
              data_size: int | None = None) -> bytes:
    """A PCM WAV whose header says whatever the case needs (rate 0, 2 Hz, ...)."""
    body = np.zeros(samples * channels, dtype="<i2").tobytes() if bits == 16 else \
        b"\0" * (samples * channels * bits // 8)
    size = len(body) if data_size is None else data_size
    block = channels * bits // 8
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + size, b"WAVE", b"fmt ", 16, 1,
                       channels, rate, rate * block, block, bits, b"data", size) + body


def _base(tmp: Path) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "config.demo.yaml").read_text())
    data["model"]["cache_dir"] = str(tmp / "cache")
    data["voice"] |= {"prompt_dir": str(ROOT / "voices"),
                      "thinking_clips": str(ROOT / "voices" / "thinking")}
    data["audio"] |= {"input_wav": str(ROOT / "voices" / "demo_input.wav"),
                      "output_wav": str(tmp / "out" / "out.wav")}
    data["conversation"]["transcript_file"] = str(tmp / "out" / "transcript.txt")
    data["memory"] |= {"journal_dir": str(tmp / "j"), "profile_path": str(tmp / "p.json")}
    data["service"]["status_file"] = str(tmp / "status.json")
    return data


def _set(data: dict, dotted: str, value: Any) -> None:
    *path, key = dotted.split(".")
    for part in path:
        data = data.setdefault(part, {})
    data[key] = value


def _file(name: str, content: bytes | str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path
    return make


def _bad_voice_codes(tmp: Path) -> Path:
    import torch

    path = tmp / "bad.voice.pt"
    codes = torch.full((8, 20), 5000, dtype=torch.int16)  # Mimi codes are 0..2047
    torch.save({"format": "entropi-voice", "version": 1, "codes": codes, "source": "x.wav",
                "source_sha256": "0", "mimi": "x"}, path)
    return path


def _voice(make: Callable[[Path], Path]) -> Callable[[Path, dict], None]:
    def apply(tmp: Path, data: dict) -> None:
        path = make(tmp)
        data["voice"] |= {"prompt_dir": str(path.parent), "prompt_file": path.name}
    return apply


def _key(dotted: str, make: Callable[[Path], Any]) -> Callable[[Path, dict], None]:
    def apply(tmp: Path, data: dict) -> None:
        value = make(tmp)
        _set(data, dotted, str(value) if isinstance(value, Path) else value)
    return apply


def _clip_dir(*files: tuple[str, bytes]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        folder = tmp / "clips"
        folder.mkdir()
        for name, content in files:
            (folder / name).write_bytes(content)
        return folder
    return make


def _blocker(tmp: Path) -> Path:
    """A plain file where a folder would have to be."""
    path = tmp / "blocker"
    path.write_text("x")
    return path


def _local_model(persona: str) -> Callable[[Path, dict], None]:
    """model.source local with a real (tiny) tokenizer: the persona is counted exactly."""
    def apply(tmp: Path, data: dict) -> None:
        from entropi.text.tokenizer import train_tiny_tokenizer

        tok = train_tiny_tokenizer(tmp / "tok.model")
        (tmp / "w.safetensors").write_bytes(b"x")
        data["model"] = {"source": "local", "moshi_weight": str(tmp / "w.safetensors"),
                         "mimi_weight": str(tmp / "w.safetensors"), "tokenizer": str(tok)}
        data["conversation"] |= {"base_persona": persona, "prompt_token_budget": 20}
    return apply


WAV_OK = wav_bytes(24_000)
# (id, YAML text replacing the config, or a function(tmp, data) changing it; expected parts)
CASES: list[tuple[str, Any, list[str]]] = [
    # ---- YAML and values
    ("alias-bomb", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c]\n",
     ["unreadable YAML at line 2", "aliases (*name) are not supported"]),
    ("deep-nesting", "runtime: " + "[" * 20_000, ["unreadable YAML", "nested deeper than 32"]),
    ("duplicate-key", "runtime:\n  device: cpu\n  device: cuda\n",
     ["line 3", "key 'device' appears twice (first at line 2)"]),
    ("duplicate-section", "window:\n  min_seconds: 4\nwindow:\n  max_seconds: 9\n",
     ["key 'window' appears twice"]),
    ("huge-config", "# " + "x" * 300_000 + "\n", ["far too big for a config"]),
    ("seed-over-64-bits", lambda t, d: _set(d, "sampling.seed", 2**64),
     ["sampling.seed:", "out of range"]),
    ("seed-negative", lambda t, d: _set(d, "sampling.seed", -1), ["sampling.seed:"]),
    ("base-url-not-a-url", lambda t, d: d["secondary_model"].update(
        backend="openai", base_url="not-a-url"),
     ["secondary_model.base_url:", "'not-a-url' is not an http(s) URL"]),
    ("base-url-credentials", lambda t, d: d["secondary_model"].update(
        backend="openai", base_url="http://bob:hunter2@127.0.0.1:9/v1"),
     ["secondary_model.base_url:", "holds credentials"]),
    ("inf-timeout", lambda t, d: _set(d, "secondary_model.read_timeout_seconds", float("inf")),
     ["secondary_model.read_timeout_seconds:", "finite"]),
    ("nan-level", lambda t, d: _set(d, "window.vad_threshold_dbfs", float("nan")),
     ["window.vad_threshold_dbfs:"]),
    ("persona-huge", lambda t, d: _set(d, "conversation.base_persona", "word " * 2_000),
     ["conversation:", "base_persona is 8000 characters", "prompt_token_budget"]),
    ("persona-over-budget", _local_model("You are Ada. " * 30),
     ["conversation.base_persona:", "exceed conversation.prompt_token_budget 20"]),
    ("openrouter-without-key", lambda t, d: _set(d, "secondary_model.backend", "openrouter"),
     ["secondary_model.api_key:", "needs a key"]),
    ("conversations-without-websocket", lambda t, d: _set(d, "runtime.max_conversations", 3),
     ["runtime.max_conversations: 3 needs audio.input: websocket"]),
    ("conversations-over-64", lambda t, d: _set(d, "runtime.max_conversations", 65),
     ["runtime.max_conversations:"]),
    ("local-model-missing", lambda t, d: d.update(model={
        "source": "local", "moshi_weight": str(t / "none.safetensors"),
        "mimi_weight": str(t / "none"), "tokenizer": str(t / "none")}),
     ["model.moshi_weight:", "no such model file"]),
    # ---- voice file
    ("voice-missing", _voice(lambda t: t / "nope.wav"),
     ["voice.prompt_file:", "nope.wav: no such voice file"]),
    ("voice-empty", _voice(_file("empty.wav", b"")), ["voice.prompt_file:", "is empty"]),
    ("voice-not-audio", _voice(_file("text.wav", "hello, not audio " * 20)),
     ["text.wav: not a readable audio file"]),
    ("voice-rate-0", _voice(_file("r0.wav", wav_bytes(0))),
     ["r0.wav: not a readable audio file", "sample rate of 0 Hz"]),
    ("voice-2-hz", _voice(_file("r2.wav", wav_bytes(2, 20_000))), ["sample rate of 2 Hz"]),
    ("voice-too-long", _voice(_file("long.wav", wav_bytes(24_000, 24_000 * 6))),
     ["long.wav: 6.0 s is longer than voice.max_prompt_seconds (4 s)"]),
    ("voice-codes-out-of-range", _voice(_bad_voice_codes),
     ["bad.voice.pt: holds codes outside 0-2047"]),
    ("voice-pt-garbage", _voice(_file("g.pt", b"PK\x03\x04garbage")),
     ["g.pt: not a voice preset"]),
    # ---- thinking clips
    ("clips-missing", _key("voice.thinking_clips", lambda t: t / "none"),
     ["voice.thinking_clips:", "is not a folder"]),
    ("clips-a-file", _key("voice.thinking_clips", _blocker), ["is not a folder"]),
    ("clips-empty", _key("voice.thinking_clips", _clip_dir()), ["holds no .wav clips"]),
    ("clip-not-audio", _key("voice.thinking_clips", _clip_dir(("a.wav", b"text" * 30))),
     ["a.wav: not a readable audio file"]),
    ("clip-rate-0", _key("voice.thinking_clips", _clip_dir(("a.wav", wav_bytes(0)))),
     ["a.wav: not a readable audio file", "0 Hz"]),
    ("clip-2-hz", _key("voice.thinking_clips", _clip_dir(("a.wav", wav_bytes(2, 40_000)))),
     ["a.wav: not a readable audio file", "2 Hz"]),
    # ---- input WAV
    ("input-missing", _key("audio.input_wav", lambda t: t / "none.wav"),
     ["none.wav: no such audio file"]),
    ("input-empty", _key("audio.input_wav", _file("e.wav", b"")), ["e.wav: not a readable"]),
    ("input-not-audio", _key("audio.input_wav", _file("t.wav", "text " * 50)),
     ["t.wav: not a readable audio file"]),
    ("input-rate-0", _key("audio.input_wav", _file("r0.wav", wav_bytes(0))), ["0 Hz"]),
    ("input-2-hz", _key("audio.input_wav", _file("r2.wav", wav_bytes(2, 20_000))), ["2 Hz"]),
    ("input-no-samples", _key("audio.input_wav", _file("n.wav", wav_bytes(24_000, 0))),
     ["n.wav: contains no audio samples"]),
    ("input-is-output", lambda t, d: _set(d, "audio.output_wav", d["audio"]["input_wav"]),
     ["audio.output_wav:", "is the same file as audio.input_wav"]),
    # ---- GGUF
    ("gguf-missing", _key("secondary_model.embedded.gguf", lambda t: t / "m.gguf"),
     ["secondary_model.embedded.gguf:", "m.gguf: no such GGUF model file"]),
    ("gguf-empty", _key("secondary_model.embedded.gguf", _file("e.gguf", b"")), ["is empty"]),
    ("gguf-not-gguf", _key("secondary_model.embedded.gguf", _file("x.gguf", b"PK\x03\x04xx")),
     ["x.gguf is not a GGUF file"]),
    # ---- places run writes to
    ("output-wav-under-a-file", _key("audio.output_wav", lambda t: _blocker(t) / "o.wav"),
     ["audio.output_wav:", "blocker is a file, not a folder"]),
    ("output-wav-is-a-folder", _key("audio.output_wav", lambda t: t), ["is a folder"]),
    ("status-under-a-file", _key("service.status_file", lambda t: _blocker(t) / "s.json"),
     ["service.status_file:", "is a file, not a folder"]),
    ("journal-is-etc-passwd", _key("memory.journal_dir", lambda t: Path("/etc/passwd")),
     ["memory.journal_dir: /etc/passwd is not a folder"]),
    ("journal-under-a-file", _key("memory.journal_dir", lambda t: _blocker(t) / "j"),
     ["memory.journal_dir:", "is a file, not a folder"]),
    ("profile-is-a-folder", _key("memory.profile_path", lambda t: t), ["memory.profile_path:"]),
    ("transcript-under-a-file",
     _key("conversation.transcript_file", lambda t: _blocker(t) / "t.txt"),
     ["conversation.transcript_file:", "is a file, not a folder"]),
    ("encryption-key-unset", _key("memory.encryption_key_env", lambda t: "ENTROPI_NO_SUCH_KEY"),
     ["memory.encryption_key_env:", "ENTROPI_NO_SUCH_KEY is not set"]),
]


def _write_case(tmp: Path, change: Any) -> Path:
    path = tmp / "config.yaml"
    if isinstance(change, str):
        path.write_text(change)
        return path
    data = _base(tmp)
    change(tmp, data)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def no_model(monkeypatch):
    """Reaching the daemon fails the test: the mistake was not caught before loading."""
    import entropi.service.daemon

    def tripwire(*_: Any) -> int:
        raise AssertionError("run got as far as loading the model")

    monkeypatch.setattr(entropi.service.daemon, "run_daemon", tripwire)
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    # cli.main pointed logging at this test's captured stderr, which pytest now closes.
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_base_config_passes(tmp_path, no_model, capsys):
    """The cases differ from a good config by exactly the one broken thing."""
    path = _write_case(tmp_path, lambda t, d: None)
    assert cli.main(["check-config", "--config", str(path)]) == 0
    with pytest.raises(AssertionError, match="as far as loading the model"):
        cli.main(["run", "--config", str(path)])


@pytest.mark.parametrize("name,change,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_from_check_config_and_run(
        tmp_path, no_model, capsys, name, change, expected):
    path = _write_case(tmp_path, change)
    for command in ("check-config", "run"):
        code = cli.main([command, "--config", str(path), "--log-format", "json"])
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert (code, len(lines), out) == (2, 1, ""), (command, code, err, out)
        assert lines[0].startswith(("config error: ", "input error: ")), lines
        for part in expected:
            assert part in lines[0], (command, part, lines[0])


def test_summary_json_folder_is_refused_by_run_before_loading(tmp_path, no_model, capsys):
    path = _write_case(tmp_path, lambda t, d: None)
    assert cli.main(["run", "--config", str(path), "--summary-json", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"config error: --summary-json: {tmp_path} is " \
        "a folder; give a file name"


@pytest.mark.parametrize("name", ["alias-bomb", "deep-nesting", "voice-rate-0",
                                  "journal-is-etc-passwd"])
def test_real_process_exits_2_with_one_line_and_no_model(tmp_path, name):
    """A real process: Rust panics, RecursionError and memory blow-ups can't hide here."""
    change = next(c[1] for c in CASES if c[0] == name)
    path = _write_case(tmp_path, change)
    for command in ("check-config", "run"):
        proc = subprocess.run([sys.executable, "-m", "entropi", command, "--config", str(path),
                               "--log-format", "json"], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=60)
        lines = proc.stderr.strip().splitlines()
        assert (proc.returncode, len(lines)) == (2, 1), (command, proc.stderr)
        assert "engine" not in proc.stderr and "loading" not in proc.stderr
