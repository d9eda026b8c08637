"""A GGUF file's header read in full (metadata and tensor table, no weights), so a file with
the right magic and a garbage body is refused before the big model loads, not by llama.cpp
after it."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

from entropi.core.errors import ConfigError
from entropi.core.files import open_regular

# GGUF value types: fixed sizes, 8 = string, 9 = array.
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_GGML_TYPE = 64  # ggml type ids are far below this


class _Bad(Exception):
    pass


class _Reader:
    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f = f
        self.size = size

    def take(self, n: int) -> bytes:
        if n < 0 or self.f.tell() + n > self.size:
            raise _Bad("runs past the end of the file")
        return self.f.read(n)

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def string(self) -> bytes:
        return self.take(self.u64())

    def value(self, kind: int) -> bytes | None:
        """Read one value; return it for a string, skip anything else."""
        if kind in _FIXED:
            self.take(_FIXED[kind])
            return None
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            inner, count = self.u32(), self.u64()
            if inner in _FIXED:
                self.take(_FIXED[inner] * count)
            else:
                if count > self.size:
                    raise _Bad(f"an array claims {count} items")
                for _ in range(count):
                    self.value(inner)
            return None
        raise _Bad(f"unknown value type {kind}")


def check_gguf(path: Path, key: str) -> None:
    """Raise one ConfigError line unless ``path``'s header parses as llama.cpp reads it."""
    try:
        with os.fdopen(open_regular(path), "rb", buffering=1 << 16) as f:
            _parse(_Reader(f, os.fstat(f.fileno()).st_size))
    except _Bad as exc:
        raise ConfigError(f"{key}: {path} is not a GGUF file llama.cpp can load ({exc}); give a "
                          "llama.cpp .gguf model") from None
    except OSError as exc:
        raise ConfigError(f"{key}: {path}: cannot read ({exc.strerror})") from None


def _parse(r: _Reader) -> None:
    if r.take(4) != b"GGUF":
        raise _Bad("no GGUF magic")
    version = r.u32()
    if version not in (2, 3):
        raise _Bad(f"version {version}; llama.cpp reads 2 and 3")
    tensors, kvs = r.u64(), r.u64()
    if tensors > r.size // 32 or kvs > r.size // 12:
        raise _Bad(f"the header claims {tensors} tensors and {kvs} metadata keys")
    alignment, has_arch = 32, False
    for _ in range(kvs):
        name = r.string()
        kind = r.u32()
        if name == b"general.alignment" and kind == 4:
            alignment = r.u32()
            continue
        text = r.value(kind)
        has_arch |= name == b"general.architecture" and bool(text)
    if not has_arch:
        raise _Bad("no general.architecture in its metadata")
    if alignment == 0 or alignment & (alignment - 1):
        raise _Bad(f"alignment {alignment} is not a power of two")
    offsets = []
    for _ in range(tensors):
        r.string()
        dims = r.u32()
        if not 1 <= dims <= MAX_DIMS:
            raise _Bad(f"a tensor with {dims} dimensions")
        for _ in range(dims):
            r.u64()
        if r.u32() >= MAX_GGML_TYPE:
            raise _Bad("a tensor of unknown type")
        offsets.append(r.u64())
    start = -(-r.f.tell() // alignment) * alignment
    if tensors == 0 or any(o % alignment or start + o >= r.size for o in offsets):
        raise _Bad("its tensor table points outside the file")
