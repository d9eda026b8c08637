"""Issue 23's audit, re-run with new cases: configs that would destroy data, hang the daemon
or pass ``check-config`` only to be refused by ``run``.

Each case starts from the same good config as ``test_bad_inputs`` and breaks one thing with
real files: hard links, symlinks, symlink loops, FIFOs (``os.mkfifo``), sockets, devices,
kernel file systems, garbage PEM and GGUF bodies, silent and undecodable voices. Both commands
must answer with the same single line and exit code, before any model loads.
"""

from __future__ import annotations

import os
import shutil
import stat
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
from tests.commands.test_bad_inputs import _base, _file, _set, _voice, wav_bytes

ROOT = Path(__file__).resolve().parents[2]
INPUT = ROOT / "voices" / "demo_input.wav"
Change = Callable[[Path, dict], None]


# --------------------------------------------------------------------------- makers


def _fifo(tmp: Path, name: str = "fifo") -> Path:
    path = tmp / name
    os.mkfifo(path)
    return path


def _socket(tmp: Path) -> Path:
    path = tmp / "sock"
    os.mknod(path, stat.S_IFSOCK | 0o600)
    return path


def _loop(tmp: Path, name: str = "loop") -> Path:
    path = tmp / name
    os.symlink(path.name, path)  # a link to itself: stat() says ELOOP
    return path


def _to(dotted: str, make: Callable[[Path], Path | str]) -> Change:
    def apply(tmp: Path, data: dict) -> None:
        _set(data, dotted, str(make(tmp)))
    return apply


def _same(first: str, second: str) -> Change:
    """Two roles given the same path (after ``first`` is set up as the base has it)."""
    def apply(tmp: Path, data: dict) -> None:
        *path, key = first.split(".")
        node = data
        for part in path:
            node = node[part]
        _set(data, second, node[key])
    return apply


def _hard_linked_output(tmp: Path, data: dict) -> None:
    copy = tmp / "in.wav"
    shutil.copy(INPUT, copy)
    os.link(copy, tmp / "out-link.wav")
    data["audio"] |= {"input_wav": str(copy), "output_wav": str(tmp / "out-link.wav")}


def _symlinked_profile(tmp: Path, data: dict) -> None:
    (tmp / "t.txt").write_text("## window 1\n")
    os.symlink(tmp / "t.txt", tmp / "profile-link.json")
    data["conversation"]["transcript_file"] = str(tmp / "t.txt")
    data["memory"]["profile_path"] = str(tmp / "profile-link.json")


def _named_twice(tmp: Path, data: dict) -> None:
    (tmp / "sub").mkdir()
    data["conversation"]["transcript_file"] = str(tmp / "sub" / ".." / "p.json")


def _linked_folder(tmp: Path, data: dict) -> None:
    """The status file reached through a symlinked folder is the output WAV."""
    (tmp / "out").mkdir(exist_ok=True)
    os.symlink(tmp / "out", tmp / "alias")
    data["service"]["status_file"] = str(tmp / "alias" / "out.wav")


def _output_is_voice(tmp: Path, data: dict) -> None:
    shutil.copy(ROOT / "voices" / "demo_voice.wav", tmp / "v.wav")
    data["voice"] |= {"prompt_dir": str(tmp), "prompt_file": "v.wav"}
    data["audio"]["output_wav"] = str(tmp / "v.wav")


def _all(*changes: Change) -> Change:
    def apply(tmp: Path, data: dict) -> None:
        for change in changes:
            change(tmp, data)
    return apply


def _dangling(tmp: Path) -> Path:
    """A symlink to a place that cannot be created (writes follow the link)."""
    (tmp / "blocker").write_text("x")
    os.symlink(tmp / "blocker" / "o.wav", tmp / "o-link.wav")
    return tmp / "o-link.wav"


def _status_is_config_link(tmp: Path, data: dict) -> None:
    (tmp / "config.yaml").write_text("# replaced by _write\n")
    os.link(tmp / "config.yaml", tmp / "status-link.json")
    data["service"]["status_file"] = str(tmp / "status-link.json")


def _websocket(host: str = "127.0.0.1", **server: Any) -> Change:
    def apply(tmp: Path, data: dict) -> None:
        data["audio"] |= {"input": "websocket", "output": "websocket"}
        data["server"] = {"host": host} | {k: str(v(tmp)) for k, v in server.items()}
    return apply


def _discord(tmp: Path, data: dict) -> None:
    data["audio"] |= {"input": "discord", "output": "discord"}
    data["discord"] = {"guild_id": 1, "channel_id": 2, "token_env": "ENTROPI_TEST_NO_TOKEN"}


def _gguf(body: bytes) -> Change:
    return _to("secondary_model.embedded.gguf", _file("m.gguf", body))


def _gguf_head(kv_count: int, garbage: int) -> bytes:
    """Valid magic, version and counts, then random bytes."""
    rng = np.random.default_rng(0)
    return b"GGUF" + struct.pack("<IQQ", 3, 10, kv_count) + rng.bytes(garbage)


def _truncated_real_gguf(tmp: Path) -> Path:
    from entropi.llm.embedded import default_gguf

    path = tmp / "cut.gguf"
    with open(default_gguf(), "rb") as f:
        path.write_bytes(f.read(4 << 20))  # the whole header, a fraction of the weights
    return path


def _wav_block_align_0() -> bytes:
    """A header our parser accepts (it reads rate, channels and bits) but whose block align
    and byte rate are 0: sphn, the engine's decoder, cannot read it."""
    body = np.random.default_rng(1).integers(-3000, 3000, 24_000).astype("<i2").tobytes()
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(body), b"WAVE", b"fmt ", 16, 1,
                       1, 24_000, 0, 0, 16, b"data", len(body)) + body


def _asr(**keys: Any) -> Change:
    def apply(tmp: Path, data: dict) -> None:
        data["asr"] = {k: (str(v(tmp)) if callable(v) else v) for k, v in keys.items()}
    return apply


def _empty_dir(tmp: Path) -> Path:
    (tmp / "whisper").mkdir()
    return tmp / "whisper"


# --------------------------------------------------------------------------- the table

# (id, change, exit code, parts of the one line both commands print)
CASES: list[tuple[str, Change, int, list[str]]] = [
    # ---- two roles, one file
    ("output-hard-linked-to-input", _hard_linked_output, 2,
     ["audio.output_wav:", "out-link.wav is the same file as audio.input_wav"]),
    ("transcript-is-profile", _same("conversation.transcript_file", "memory.profile_path"), 2,
     ["memory.profile_path:", "same file as conversation.transcript_file"]),
    ("status-is-output-wav", _same("audio.output_wav", "service.status_file"), 2,
     ["service.status_file:", "same file as audio.output_wav"]),
    ("profile-symlink-to-transcript", _symlinked_profile, 2,
     ["memory.profile_path:", "same file as conversation.transcript_file"]),
    ("transcript-named-twice", _named_twice, 2,
     ["memory.profile_path:", "same file as conversation.transcript_file"]),
    ("status-through-a-symlinked-folder", _linked_folder, 2,
     ["service.status_file:", "same file as audio.output_wav"]),
    ("profile-is-the-ledger", _to("memory.profile_path", lambda t: t / "ledger.json"), 2,
     ["the ledger beside memory.profile_path:", "same file as memory.profile_path"]),
    ("transcript-is-the-config", _to("conversation.transcript_file",
                                     lambda t: t / "config.yaml"), 2,
     ["conversation.transcript_file:", "same file as --config"]),
    ("transcript-is-the-status-lock", _to("conversation.transcript_file",
                                          lambda t: t / "status.json.lock"), 2,
     ["the lock beside service.status_file:", "same file as conversation.transcript_file"]),
    ("output-is-the-voice", _output_is_voice, 2,
     ["audio.output_wav:", "same file as voice.prompt_file"]),
    ("transcript-inside-the-journal", _to("conversation.transcript_file",
                                          lambda t: t / "j" / "t.txt"), 2,
     ["conversation.transcript_file:", "is inside memory.journal_dir"]),
    ("journal-is-the-model-cache", _same("model.cache_dir", "memory.journal_dir"), 2,
     ["memory.journal_dir:", "same folder as model.cache_dir"]),
    # ---- FIFOs, sockets, devices: refused before anything opens them (no hang)
    ("output-wav-fifo", _to("audio.output_wav", _fifo), 2,
     ["audio.output_wav:", "is a FIFO, not a regular file"]),
    ("input-wav-fifo", _to("audio.input_wav", _fifo), 2, ["audio.input_wav:", "is a FIFO"]),
    ("profile-fifo", _to("memory.profile_path", _fifo), 2, ["memory.profile_path:", "FIFO"]),
    ("transcript-fifo", _to("conversation.transcript_file", _fifo), 2,
     ["conversation.transcript_file:", "FIFO"]),
    ("status-fifo", _to("service.status_file", _fifo), 2, ["service.status_file:", "FIFO"]),
    ("journal-fifo", _to("memory.journal_dir", _fifo), 2, ["memory.journal_dir:", "FIFO"]),
    ("voice-fifo", _voice(lambda t: _fifo(t, "v.wav")), 2, ["voice.prompt_file:", "FIFO"]),
    ("gguf-fifo", _to("secondary_model.embedded.gguf", _fifo), 2,
     ["secondary_model.embedded.gguf:", "FIFO"]),
    ("clip-fifo", _to("voice.thinking_clips", lambda t: _fifo(t, "a.wav").parent), 2,
     ["a.wav: is a FIFO, not a regular file"]),
    ("output-wav-socket", _to("audio.output_wav", _socket), 2, ["is a socket"]),
    ("output-wav-dev-null", _to("audio.output_wav", lambda t: "/dev/null"), 2,
     ["audio.output_wav: /dev/null is a character device"]),
    ("input-wav-dev-zero", _to("audio.input_wav", lambda t: "/dev/zero"), 2,
     ["audio.input_wav: /dev/zero is a character device"]),
    ("tls-cert-fifo", _websocket(tls_cert=_fifo, tls_key=lambda t: _fifo(t, "k")), 2,
     ["server.tls_cert:", "FIFO"]),
    ("tokens-file-fifo", _websocket(tokens_file=_fifo), 2, ["server.tokens_file:", "FIFO"]),
    # ---- symlink loops (a traceback before)
    ("output-wav-loop", _to("audio.output_wav", _loop), 2,
     ["audio.output_wav:", "is a symlink loop"]),
    ("journal-loop", _to("memory.journal_dir", _loop), 2,
     ["memory.journal_dir:", "is a symlink loop; give a real folder"]),
    ("profile-under-a-loop", _to("memory.profile_path", lambda t: _loop(t) / "p.json"), 2,
     ["memory.profile_path:", "symlink loop"]),
    ("input-wav-loop", _to("audio.input_wav", _loop), 2, ["audio.input_wav:", "symlink loop"]),
    ("status-loop", _to("service.status_file", _loop), 2, ["service.status_file:", "loop"]),
    ("output-wav-nul", _to("audio.output_wav", lambda t: f"{t}/o\0.wav"), 2,
     ["audio.output_wav:", "holds a NUL character; fix the path"]),
    ("output-wav-dangling-link-under-a-file", _to("audio.output_wav", _dangling), 2,
     ["audio.output_wav:", "o-link.wav cannot exist:", "blocker is a file, not a folder"]),
    ("status-hard-linked-to-config", _status_is_config_link, 2,
     ["service.status_file:", "same file as --config"]),
    ("users-dir-loop", _all(_websocket(tokens_file=lambda t: t / "tokens"),
                            _to("memory.users_dir", _loop)), 2,
     ["memory.users_dir:", "is a symlink loop"]),
    # ---- kernel file systems
    ("status-under-sys", _to("service.status_file", lambda t: "/sys/entropi/status.json"), 2,
     ["service.status_file: /sys/entropi/status.json is inside /sys (sysfs)"]),
    ("transcript-in-proc", _to("conversation.transcript_file", lambda t: "/proc/entropi.txt"),
     2, ["conversation.transcript_file:", "(proc), a kernel file system"]),
    # ---- what only `run` refused before
    ("server-open-without-token", _websocket("0.0.0.0"), 2,
     ["server.host: 0.0.0.0 is reachable from other machines", "ENTROPI_TEST_NO_TOKEN"]),
    ("discord-without-token", _discord, 2,
     ["discord.token_env:", "ENTROPI_TEST_NO_TOKEN is not set"]),
    ("tls-garbage-pem", _websocket(tls_cert=_file("c.pem", "-----BEGIN CERTIFICATE-----\nxx\n"),
                                   tls_key=_file("k.pem", "not a key")), 2,
     ["server.tls_cert: cannot load", "c.pem"]),
    ("gguf-magic-then-garbage", _gguf(_gguf_head(40, 50_000)), 2,
     ["m.gguf is not a GGUF file llama.cpp can load"]),
    ("gguf-absurd-counts", _gguf(_gguf_head(2**60, 100)), 2,
     ["m.gguf is not a GGUF file", "metadata keys"]),
    ("gguf-truncated", _to("secondary_model.embedded.gguf", _truncated_real_gguf), 2,
     ["cut.gguf is not a GGUF file llama.cpp can load", "outside the file"]),
    ("voice-silent", _voice(_file("quiet.wav", wav_bytes(24_000, 24_000))), 2,
     ["quiet.wav: the audio is silent"]),
    ("voice-sphn-unreadable", _voice(_file("b0.wav", _wav_block_align_0())), 2,
     ["b0.wav: not a readable audio file"]),
    ("voice-nan", _voice(_file("nan.wav", struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + 96_000, b"WAVE", b"fmt ", 16, 3, 1, 24_000,
        96_000, 4, 32, b"data", 96_000) + np.full(24_000, np.nan, "<f4").tobytes())), 2,
     ["nan.wav: holds NaN or infinite samples"]),
    ("asr-model-bad-name", _asr(backend="faster-whisper", model="huge-v9"), 3,
     ["asr.model 'huge-v9' is neither a directory"]),
    ("asr-model-empty-folder", _asr(backend="faster-whisper", model=_empty_dir), 3,
     ["the folder has no config.json"]),
    ("asr-model-not-cached-offline", _asr(backend="faster-whisper",
                                          model="entropi-test/no-such-whisper"), 3,
     ["asr.model 'entropi-test/no-such-whisper': cannot fetch"]),
    ("kyutai-not-cached-offline", _asr(backend="kyutai", kyutai_repo="entropi-test/no-stt"), 3,
     ["asr.kyutai_repo 'entropi-test/no-stt' is not cached", "HF_HUB_OFFLINE"]),
    ("pause-longer-than-window", lambda t, d: d["window"].update(
        min_seconds=1, max_seconds=2, pause_seconds=3), 2,
     ["window:", "pause_seconds (3) must not exceed max_seconds (2)"]),
]


@pytest.fixture
def both(monkeypatch):
    """Run a command in-process; the daemon itself is a tripwire (reaching it = too late)."""
    import huggingface_hub.constants

    import entropi.service.daemon

    def tripwire(*_: Any) -> int:
        raise AssertionError("run got as far as loading the model")

    monkeypatch.setattr(entropi.service.daemon, "run_daemon", tripwire)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    for name in ("ENTROPI_SERVER_TOKEN", "ENTROPI_TEST_NO_TOKEN", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    root = logging_state()
    yield
    structlog.reset_defaults()
    root()


def logging_state() -> Callable[[], None]:
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def restore() -> None:
        root.handlers[:] = handlers
        root.setLevel(level)
    return restore


def _write(tmp: Path, change: Change) -> Path:
    data = _base(tmp)
    data["server"] = {"token_env": "ENTROPI_TEST_NO_TOKEN"}
    change(tmp, data)
    data["server"].setdefault("token_env", "ENTROPI_TEST_NO_TOKEN")
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _answers(path: Path, capsys) -> list[tuple[int, str]]:
    out = []
    for command in ("check-config", "run"):
        code = cli.main([command, "--config", str(path), "--log-format", "json"])
        stdout, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert len(lines) == 1 and stdout == "", (command, code, err, stdout)
        out.append((code, lines[0]))
    return out


@pytest.mark.parametrize("name,change,code,expected", CASES, ids=[c[0] for c in CASES])
def test_both_commands_refuse_with_the_same_line(tmp_path, both, capsys, name, change, code,
                                                 expected):
    path = _write(tmp_path, change)
    before = _snapshot(tmp_path)
    answers = _answers(path, capsys)
    assert answers[0] == answers[1], answers  # check-config says exactly what run says
    assert answers[0][0] == code, answers
    for part in expected:
        assert part in answers[0][1], (part, answers[0][1])
    assert _snapshot(tmp_path) == before  # refused before anything was created or written


def _snapshot(folder: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.lstat().st_mtime_ns, p.lstat().st_size) for p in folder.rglob("*")}


def test_roles_that_only_read_may_share_a_file_and_a_fresh_layout_passes(tmp_path, both,
                                                                         capsys):
    """The rule refuses sharing only where something writes: the same WAV as voice and
    input, and a symlinked output folder, are fine."""
    def change(tmp: Path, data: dict) -> None:
        voice = tmp / "v.wav"
        shutil.copy(ROOT / "voices" / "demo_voice.wav", voice)
        os.link(voice, tmp / "input-link.wav")
        data["voice"] |= {"prompt_dir": str(tmp), "prompt_file": "v.wav"}
        data["audio"]["input_wav"] = str(tmp / "input-link.wav")
        (tmp / "real-out").mkdir()
        os.symlink(tmp / "real-out", tmp / "out-alias")
        data["audio"]["output_wav"] = str(tmp / "out-alias" / "o.wav")
    path = _write(tmp_path, change)
    assert cli.main(["check-config", "--config", str(path)]) == 0
    with pytest.raises(AssertionError, match="as far as loading the model"):
        cli.main(["run", "--config", str(path)])


def _self_signed(stem: Path, passphrase: bytes | None = None) -> None:
    """``stem``.crt and ``stem``.key: a real self-signed pair (what an operator would give)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    stem.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    stem.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase) if passphrase else
        serialization.NoEncryption()))


def test_a_real_tls_pair_passes_and_a_mismatched_key_is_refused(tmp_path, both, capsys):
    _self_signed(tmp_path / "a")
    _self_signed(tmp_path / "b")
    good = _write(tmp_path, _websocket(tls_cert=lambda t: t / "a.crt",
                                       tls_key=lambda t: t / "a.key"))
    assert cli.main(["check-config", "--config", str(good)]) == 0
    capsys.readouterr()
    bad = _write(tmp_path, _websocket(tls_cert=lambda t: t / "a.crt",
                                      tls_key=lambda t: t / "b.key"))
    (check, line), again = _answers(bad, capsys)
    assert (check, line) == again and check == 2 and "server.tls_cert: cannot load" in line
    _self_signed(tmp_path / "c", passphrase=b"hunter2hunter2")  # would prompt on a terminal
    locked = _write(tmp_path, _websocket(tls_cert=lambda t: t / "c.crt",
                                         tls_key=lambda t: t / "c.key"))
    (check, line), again = _answers(locked, capsys)
    assert (check, line) == again and check == 2 and "the key is encrypted" in line


@pytest.mark.parametrize("kind", ["fifo", "loop", "socket", "folder"])
def test_a_config_that_is_no_file_is_one_line_in_a_real_process(tmp_path, kind):
    """`--config` naming a FIFO blocked both commands forever: a real process, a timeout."""
    path = {"fifo": _fifo, "loop": _loop, "socket": _socket, "folder": lambda t: t}[kind](
        tmp_path)
    for command in ("check-config", "run"):
        proc = subprocess.run([sys.executable, "-m", "entropi", command, "--config", str(path)],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=60)
        lines = proc.stderr.strip().splitlines()
        assert (proc.returncode, len(lines)) == (2, 1), (command, proc.stderr)
        assert lines[0].startswith(f"config error: {path}"), lines
