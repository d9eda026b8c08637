"""PersonaPlex's voice presets (``NATF0.pt`` …) come inside ``voices.tgz`` in the model's hub
repo. A config that names one (``voice.prompt_file: NATF0.pt``) which is not in
``voice.prompt_dir`` gets it from there: ``voices.tgz`` is downloaded with the checkpoint
(same cache, token and errors) and the one preset is extracted into
``<model.cache_dir>/voices/<repo>/``, before any model loads.

No torch here: ``check-config`` imports it.
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

from entropi.config import Config
from entropi.core.errors import InputError
from entropi.core.logs import get_logger

log = get_logger(__name__)

ARCHIVE = "voices.tgz"
_PRESET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*\.pt$")  # NATF0.pt; not *.voice.pt (ours)
_MAX_PRESET_BYTES = 64 << 20  # a preset is a few MB; refuse a bomb in the archive


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
    target = folder / cfg.voice.prompt_file
    if not target.is_file():
        from entropi.engine.checkpoints import download

        log.info("voice_preset_fetch", preset=cfg.voice.prompt_file, repo=cfg.model.hf_repo,
                 archive=ARCHIVE)
        extract_preset(download(cfg, ARCHIVE), cfg.voice.prompt_file, folder)
    return cfg.model_copy(update={"voice": cfg.voice.model_copy(update={"prompt_dir": folder})})


def extract_preset(archive: Path, name: str, folder: Path) -> Path:
    """Copy the member whose file name is ``name`` out of ``archive`` (by name only: no path
    from the archive is ever used, so a hostile member cannot write elsewhere)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            found = next((m for m in members if Path(m.name).name == name), None)
            if found is None:
                names = sorted(Path(m.name).name for m in members
                               if m.name.endswith(".pt"))[:12]
                raise InputError(f"voice.prompt_file: {name} is not among PersonaPlex's "
                                 f"presets in {ARCHIVE} ({', '.join(names) or 'none'})")
            if found.size > _MAX_PRESET_BYTES:
                raise InputError(f"{archive}: {name} claims {found.size} bytes; not a preset")
            source = tar.extractfile(found)
            assert source is not None  # a regular file
            data = source.read(_MAX_PRESET_BYTES + 1)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"{archive}: cannot read the voice archive ({exc})") from None
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    tmp = target.with_name(f".{name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(target)  # a reader never sees half a preset
    return target
