"""PersonaPlex's voice presets (``NATF0.pt`` …) come inside ``voices.tgz`` in the model's hub
repo. A config that names one (``voice.prompt_file: NATF0.pt``) which is not in
``voice.prompt_dir`` gets it from there: ``voices.tgz`` is downloaded with the checkpoint
(same cache, token and errors) and every preset is extracted into
``<model.cache_dir>/voices/<repo>/``, before any model loads. Web callers may then pick any of
PersonaPlex's 18 presets by name (its own web UI sends ``voice_prompt=NATF0.pt``) beside the
user's own voices.

No torch here: ``check-config`` imports it.
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

from entropi.config import Config
from entropi.core.errors import EntropiError, InputError
from entropi.core.logs import get_logger

log = get_logger(__name__)

ARCHIVE = "voices.tgz"
_PRESET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*\.pt$")  # NATF0.pt; not *.voice.pt (ours)
_MAX_PRESET_BYTES = 64 << 20  # a preset is a few MB; refuse a bomb in the archive
_COMPLETE = ".complete"  # written after every preset is out: no need to fetch again


def hub_preset(cfg: Config) -> bool:
    """The voice file is missing and is a preset name the hub's voices.tgz can supply."""
    name = cfg.voice.prompt_file
    return (cfg.model.source == "hub" and not cfg.voice.prompt_path.exists()
            and bool(_PRESET.match(name)) and not name.endswith(".voice.pt"))


def preset_dir(cfg: Config) -> Path:
    return Path(cfg.model.cache_dir).expanduser() / "voices" / cfg.model.hf_repo.replace("/", "--")


def with_hub_preset(cfg: Config) -> Config:
    """``cfg`` with ``voice.prompt_dir`` pointing at the extracted preset (fetched if needed);
    unchanged when the voice file is there or is not a hub preset."""
    if not hub_preset(cfg):
        return cfg
    folder = preset_dir(cfg)
    if not (folder / cfg.voice.prompt_file).is_file():
        if (folder / _COMPLETE).is_file():  # every preset is out: this name is not one
            raise InputError(f"voice.prompt_file: {cfg.voice.prompt_file} is not among "
                             f"PersonaPlex's presets ({', '.join(preset_names(folder)[:18])})")
        extract_preset(fetch_archive(cfg), cfg.voice.prompt_file, folder)
    return cfg.model_copy(update={"voice": cfg.voice.model_copy(update={"prompt_dir": folder})})


def fetch_archive(cfg: Config) -> Path:
    from entropi.engine.checkpoints import download

    log.info("voice_preset_fetch", repo=cfg.model.hf_repo, archive=ARCHIVE)
    return download(cfg, ARCHIVE)


def ensure_presets(cfg: Config) -> Path:
    """Every PersonaPlex preset extracted into :func:`preset_dir` (``voices.tgz`` fetched
    with the checkpoint's cache and token the first time): what callers may pick by name."""
    folder = preset_dir(cfg)
    if not (folder / _COMPLETE).is_file():
        extract_presets(fetch_archive(cfg), folder)
    return folder


def preset_names(folder: Path) -> list[str]:
    try:
        return sorted(p.name for p in folder.iterdir() if _PRESET.match(p.name))
    except OSError:
        return []


def caller_voice_folders(user_dir: Path, cfg: Config) -> tuple[Path, ...]:
    """Where a web caller's ``voice_prompt`` is looked up, in order: the user's own voices
    (a file of the same name wins), then PersonaPlex's presets (fetched now if need be; a
    failure only narrows the choice, it does not stop the daemon)."""
    if cfg.model.source != "hub":
        return (user_dir,)
    try:
        folder = ensure_presets(cfg)
    except EntropiError as exc:
        log.warning("voice_presets_unavailable", error=str(exc),
                    action=f"callers may pick only the voices in {user_dir}")
        return (user_dir,)
    return (user_dir,) if folder == user_dir else (user_dir, folder)


def _preset_members(archive: Path) -> dict[str, bytes]:
    """Every preset in the archive by file name (no path from the archive is ever used, so
    a hostile member cannot write elsewhere); oversized members are refused."""
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for m in tar.getmembers():
                name = Path(m.name).name
                if not m.isfile() or not _PRESET.match(name):
                    continue
                if m.size > _MAX_PRESET_BYTES:
                    raise InputError(f"{archive}: {name} claims {m.size} bytes; not a preset")
                source = tar.extractfile(m)
                assert source is not None  # a regular file
                out[name] = source.read(_MAX_PRESET_BYTES + 1)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"{archive}: cannot read the voice archive ({exc})") from None
    return out


def extract_preset(archive: Path, name: str, folder: Path) -> Path:
    """Extract every preset from ``archive`` into ``folder``; ``name`` must be among them."""
    members = _preset_members(archive)
    if name not in members:
        raise InputError(f"voice.prompt_file: {name} is not among PersonaPlex's presets in "
                         f"{ARCHIVE} ({', '.join(sorted(members)[:18]) or 'none'})")
    _write_all(members, folder)
    return folder / name


def extract_presets(archive: Path, folder: Path) -> list[Path]:
    members = _preset_members(archive)
    if not members:
        raise InputError(f"{archive}: no voice presets (*.pt) in the archive")
    _write_all(members, folder)
    return [folder / name for name in sorted(members)]


def _write_all(members: dict[str, bytes], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in members.items():
        target = folder / name
        tmp = target.with_name(f".{name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)  # a reader never sees half a preset
    (folder / _COMPLETE).write_text("\n".join(sorted(members)) + "\n")
