"""Capture every streaming state (LMGen's delay cache and offsets, the transformer KV caches,
Mimi's conv and transformer states) and put it back **in place**.

In place matters: CUDA graphs captured at warm-up hold pointers to these very tensors, so a
restore must ``copy_`` into them instead of swapping in new ones. Python ints (``offset_cpu``)
are set back as attributes. Graph wrappers, exit stacks and callbacks are not state.
"""

from __future__ import annotations

from typing import Any

import torch

from entropi.core.logs import get_logger

log = get_logger(__name__)

Saved = dict[str, Any]
_SKIP_TYPES: tuple[type, ...] = ()


def not_state(value: Any) -> bool:
    global _SKIP_TYPES
    if not _SKIP_TYPES:
        from contextlib import ExitStack

        from moshi.utils.compile import CUDAGraphed

        _SKIP_TYPES = (CUDAGraphed, ExitStack)
    return value is None or callable(value) or isinstance(value, _SKIP_TYPES)


def kv_filled(obj: Any) -> int | None:
    """Slots written so far in a moshi ``RingKVCache`` that has not wrapped yet, else None.

    Slots past ``end_offset`` are masked out of attention until written again, so only the
    filled prefix has to be saved: the snapshot costs (voice frames / context) of the KV
    cache instead of a second full copy (1.46 GiB at context 3000 in bf16).
    """
    if not (hasattr(obj, "capacity") and hasattr(obj, "end_offset") and hasattr(obj, "cache")):
        return None
    end = int(obj.end_offset.max())
    return end if end < obj.capacity else None


def _capture_obj(obj: Any) -> Saved:
    saved: Saved = {}
    filled = kv_filled(obj)
    for name, value in vars(obj).items():
        if name == "cache" and filled is not None:
            saved[name] = value[..., :filled, :].detach().clone()
        elif isinstance(value, torch.Tensor):
            saved[name] = value.detach().clone()
        elif isinstance(value, (bool, int, float)):
            saved[name] = value
        elif not not_state(value) and hasattr(value, "__dict__"):
            saved[name] = _capture_obj(value)  # e.g. RingKVCache inside an attention state
    return saved


def _restore_obj(obj: Any, saved: Saved) -> None:
    for name, value in saved.items():
        current = getattr(obj, name)
        if isinstance(value, torch.Tensor):
            if name == "cache" and hasattr(obj, "capacity") and current.shape != value.shape:
                current[..., : value.shape[-2], :].copy_(value)  # a KV ring's filled prefix
            elif (isinstance(current, torch.Tensor) and current.shape == value.shape
                    and current.dtype == value.dtype and current.device == value.device):
                current.copy_(value)
            else:  # LMGen rebinds ``offsets`` every step; a fresh tensor is what it expects
                setattr(obj, name, value.clone())
        elif isinstance(value, dict):
            _restore_obj(current, value)
        else:
            setattr(obj, name, value)


def streaming_states(modules: dict[str, Any]) -> dict[str, Any]:
    """Every live streaming state below each named module (its own included)."""
    out: dict[str, Any] = {}
    for prefix, module in modules.items():
        for name, state in module.get_streaming_state().items():
            if state is None:
                raise RuntimeError(f"{prefix}.{name} is not streaming")
            out[f"{prefix}/{name}"] = state
    return out


class Snapshot:
    """A frozen copy of the streaming states of ``modules`` (``{name: StreamingModule}``)."""

    def __init__(self, modules: dict[str, Any]) -> None:
        self.modules = modules
        self.saved = {key: _capture_obj(state) for key, state in streaming_states(modules).items()}

    def restore(self) -> None:
        states = streaming_states(self.modules)
        if set(states) != set(self.saved):
            raise RuntimeError("streaming layout changed since the snapshot was taken")
        for key, state in states.items():
            _restore_obj(state, self.saved[key])

    @property
    def nbytes(self) -> int:
        def size(saved: Saved) -> int:
            return sum(size(v) if isinstance(v, dict) else
                       (v.numel() * v.element_size() if isinstance(v, torch.Tensor) else 0)
                       for v in saved.values())
        return sum(size(s) for s in self.saved.values())
