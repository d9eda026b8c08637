"""A small JSON status file a running daemon keeps current, read by ``entropi status``."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from entropi.private_files import make_private_dirs, open_private


def write_status(path: Path | None, data: dict[str, Any]) -> None:
    if path is None:
        return
    make_private_dirs(path.parent)  # 0600 / 0700 whatever the umask: it names the session
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({"pid": os.getpid(), "updated_at": time.time()} | data))
    tmp.replace(path)  # readers never see a half-written file


def read_status(path: Path) -> dict[str, Any] | None:
    """The last status, with ``running`` telling whether its process is still alive."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"running": False, "error": f"{path}: unreadable status file ({exc})"}
    pid = int(data.get("pid", 0))
    try:
        os.kill(pid, 0)
        alive = pid > 0
    except ProcessLookupError:
        alive = False
    except PermissionError:
        alive = True  # exists, owned by the service user
    data["running"] = alive and data.get("state") != "stopped"
    return data
