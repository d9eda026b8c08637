"""BatchedEngine: B conversations in one LMGen and one Mimi (batch B), one forward per tick.

The single-stream :class:`Engine` stays the owner of the weights, the voice snapshots and
priming. Its batch-1 streaming state is the *scratch* a slot primes in (snapshot restore +
batched prefill, exactly as for one caller); the result is then copied into that slot's slice
of the batched state. The other slots' slices are never touched by a prime, so a slot
re-injecting costs its neighbours one job's wait between two ticks, never a frame or a bit of
their state.

A tick steps the slots that have a frame, the others masked out with moshi's ``exec_mask``:
a masked slot's state does not move, as if that tick had not happened. (Masked rows still
write scratch K/V at their ring's next free indices; the slot's own next step writes those
very indices before it reads them, and one frame writes as many as the step before it.)

Not thread-safe: one thread owns a BatchedEngine (see ``slots.py``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from entropi.core.constants import FRAME_SIZE, TEXT_PAD
from entropi.core.errors import InputError
from entropi.core.logs import get_logger
from entropi.engine.engine import Engine, FrameOut, PrimeStats, VoiceSwitch
from entropi.engine.model import device_name, module_bytes, peak_bytes
from entropi.engine.prompts import SILENCE_CODES
from entropi.engine.row_sampling import RowSampler, installed
from entropi.engine.snapshot import kv_filled, not_state

log = get_logger(__name__)
T = TypeVar("T")

States = dict[str, dict[str, Any]]  # root name -> that root's {module name: state}


class BatchedEngine:
    def __init__(self, engine: Engine, slots: int) -> None:
        from moshi.utils.compile import CUDAGraphed

        if engine.stt is not None:
            raise InputError("runtime.max_conversations > 1 does not run with asr.backend: "
                             "kyutai yet (one STT stream); use max_conversations: 1")
        self.single = engine
        self.slots = slots
        # Every slot may hold its own voice: keep each one's snapshot (and the configured
        # one), so re-injecting a slot restores its voice instead of re-stepping it.
        engine.voice_cache = slots + 1
        self.tokenizer = engine.tokenizer
        self.device = engine.device
        self.lm_gen, self.mimi = engine.lm_gen, engine.mimi
        self._roots = {"lm_gen": engine.lm_gen, "lm": engine.lm, "mimi": engine.mimi}
        self._scratch = self._states()
        for root in self._roots.values():
            root._stop_streaming()  # sets None only: the scratch states live on in _scratch
        with torch.inference_mode():
            self.lm_gen.streaming_forever(slots)  # enters the LM's streaming too
            self.mimi.streaming_forever(slots)
        self._live = self._states()
        self._installed = self._live
        graphs = self.device.type == "cuda" and engine.cfg.runtime.cuda_graphs
        self._encode = CUDAGraphed(self.mimi.encode, disable=not graphs)
        self._decode = CUDAGraphed(self.mimi.decode, disable=not graphs)
        self._pcm_in = torch.zeros(slots, 1, FRAME_SIZE, device=self.device)
        # Every slot's frame lands here first: one host→device copy per tick, not one per slot.
        self._pcm_host = torch.zeros(slots, 1, FRAME_SIZE,
                                     pin_memory=self.device.type == "cuda")
        self._mask: tuple[bool, ...] | None = None
        self._silence = torch.tensor(SILENCE_CODES, device=self.device).view(1, -1, 1).expand(
            slots, -1, -1).contiguous()
        # Each slot samples from its own generator: its words never depend on its neighbours.
        # A captured depformer graph would bake one tick's rows in: with sampling on, the
        # batched depformer runs uncaptured (as clip rendering does).
        self.sampler = RowSampler(slots, self.device)
        self._sampling = engine.lm_gen.use_sampling
        if self._sampling:
            self.lm_gen._streaming_state.graphed_depth = self.lm_gen.depformer_step
        self.voices: list[str] = [engine.voice_key] * slots  # each slot's voice (snapshot key)
        self.voice_frames: list[int] = [engine.voice_frames] * slots
        self.primed = [False] * slots

    # ------------------------------------------------------------------ states

    def _states(self) -> States:
        return {name: root.get_streaming_state() for name, root in self._roots.items()}

    def _install(self, states: States) -> None:
        if self._installed is not states:
            for name, root in self._roots.items():
                root.set_streaming_state(states[name])
            self._installed = states

    @contextmanager
    def scratch(self) -> Iterator[Engine]:
        """The single-stream engine on its own batch-1 state (priming, voices, clips)."""
        self._install(self._scratch)
        try:
            yield self.single
        finally:
            self._install(self._live)

    def on_single(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` with the single engine's state installed (e.g. rendering clips)."""
        with self.scratch():
            return fn(*args)

    def _into_slot(self, slot: int) -> None:
        """Copy the scratch state (one conversation) into ``slot``'s slice of the live one."""
        for root, states in self._scratch.items():
            for name, src in states.items():
                _copy_state(src, self._live[root][name], slot, self.slots)

    # ------------------------------------------------------------------ per slot

    def _check(self, slot: int) -> None:
        if not 0 <= slot < self.slots:
            raise IndexError(f"slot {slot} of {self.slots}")

    @torch.inference_mode()
    def use_voice(self, slot: int, path: Path) -> VoiceSwitch:
        """The voice ``slot`` primes from (checked and cached like ``Engine.use_voice``)."""
        self._check(slot)
        with self.scratch() as single:
            out = single.use_voice(Path(path))
            self.voices[slot] = single.voice_key
            self.voice_frames[slot] = single.voice_frames
        return out

    @torch.inference_mode()
    def prime(self, slot: int, prompt: str) -> PrimeStats:
        """Re-inject ``slot`` alone: its voice snapshot and prompt, the others untouched."""
        self._check(slot)
        with self.scratch() as single:
            if single.voice_key != self.voices[slot]:
                single.use_voice(Path(self.voices[slot]))  # a cached snapshot: a restore
            stats = single.prime(prompt)
            self._into_slot(slot)
        self.sampler.reseed(slot, self.single.cfg.sampling.seed)
        self.primed[slot] = True
        return stats

    def _sampling_rows(self, rows: list[int]) -> contextlib.AbstractContextManager[None]:
        return installed(self.sampler, rows) if self._sampling else contextlib.nullcontext()

    def _set_mask(self, active: list[int]) -> torch.Tensor:
        flags = tuple(i in active for i in range(self.slots))
        mask = torch.tensor(flags, device=self.device)
        if flags != self._mask:  # one walk over every streaming module; skip when unchanged
            self.lm_gen.set_exec_mask(mask)
            self.mimi.set_exec_mask(mask)
            self._mask = flags
        return mask

    def _encode_frames(self, frames: dict[int, np.ndarray]) -> torch.Tensor:
        for slot, pcm in frames.items():
            self._check(slot)
            if pcm.shape != (FRAME_SIZE,):
                raise InputError(f"engine.step: slot {slot}: expected {FRAME_SIZE} samples, "
                                 f"got {pcm.shape}")
            if not self.primed[slot]:
                raise RuntimeError(f"slot {slot} stepped before prime()")
        host = self._pcm_host.numpy()
        host.fill(0.0)
        for slot, pcm in frames.items():
            host[slot, 0] = pcm
        self._pcm_in.copy_(self._pcm_host, non_blocking=True)
        return self._encode(self._pcm_in)

    @torch.inference_mode()
    def step(self, frames: dict[int, np.ndarray]) -> dict[int, FrameOut]:
        """One tick: every slot in ``frames`` steps (encode → LM → decode); one host copy."""
        if not frames:
            return {}
        mask = self._set_mask(list(frames))
        codes = self._encode_frames(frames)
        with self._sampling_rows(list(frames)):
            out = self.lm_gen.step(codes)
        assert out is not None, "step before prime()"
        n_audio = self.single._n_audio
        # Masked rows come back as "ungenerated" ids: give the decoder valid ones.
        agent = torch.where(mask[:, None, None], out[:, 1:1 + n_audio], 0)
        audio = self._decode(agent)
        packed = torch.cat([audio.view(self.slots, -1).float(), out[:, 0].float()], dim=1)
        host = packed.cpu()
        result = {}
        for slot in frames:
            token = int(host[slot, FRAME_SIZE])
            result[slot] = FrameOut(host[slot, :FRAME_SIZE].numpy().copy(), token,
                                    self.tokenizer.piece(token))
        return result

    @torch.inference_mode()
    def catch_up(self, slot: int, frames: list[np.ndarray]) -> int:
        """Feed user frames heard while ``slot`` was not live (the thinking clip), the agent
        forced silent (silence codes, text PAD): the model hears the user, says nothing."""
        if not frames:
            return 0
        state = self.lm_gen._streaming_state
        for pcm in frames:
            self._set_mask([slot])
            codes = self._encode_frames({slot: pcm})
            with self._sampling_rows([slot]):
                self.lm_gen.step(codes, depformer_replace_tokens=self._silence)
            state = self.lm_gen._streaming_state
            ct = state.cache.shape[2]
            state.cache[slot, 0, int(state.offsets[slot]) % ct] = TEXT_PAD
        return len(frames)

    def close(self) -> None:
        """Give the single engine its own state back for good (a bench builds several B)."""
        self._install(self._scratch)
        self._live = self._scratch

    def release(self, slot: int) -> None:
        """The slot's conversation is over: it must be primed before it steps again."""
        self._check(slot)
        self.primed[slot] = False

    # ------------------------------------------------------------------ warm-up, memory

    @torch.inference_mode()
    def warm_up(self) -> float:
        """Prime every slot and step them all a few times (graphs, allocator), then mark
        them unprimed: each conversation primes its own slot."""
        started = time.perf_counter()
        prompt = self.single.cfg.conversation.first_prompt
        for slot in range(self.slots):
            self.prime(slot, prompt)
        silence = np.zeros(FRAME_SIZE, dtype=np.float32)
        for _ in range(3):
            self.step({slot: silence for slot in range(self.slots)})
        self.primed = [False] * self.slots
        return (time.perf_counter() - started) * 1000

    def memory_stats(self) -> dict[str, Any]:
        return {"weights_bytes": module_bytes(self.single.lm) + module_bytes(self.single.mimi),
                "peak_bytes": peak_bytes(self.device), "device": device_name(self.device),
                "snapshot_bytes": self.single.snapshot.nbytes, "slots": self.slots,
                "state_bytes": sum(_state_bytes(s) for states in self._live.values()
                                   for s in states.values())}


def _batch_dim(src: torch.Tensor, dst: torch.Tensor, slots: int) -> int | None:
    if src.dim() != dst.dim():
        return None
    diff = [d for d in range(src.dim()) if src.shape[d] != dst.shape[d]]
    if len(diff) == 1 and src.shape[diff[0]] == 1 and dst.shape[diff[0]] == slots:
        return diff[0]
    return None


def _copy_state(src: Any, dst: Any, slot: int, slots: int) -> None:
    """Write batch-1 state ``src`` into row ``slot`` of batch-``slots`` state ``dst``."""
    filled = kv_filled(src)
    for name, value in vars(src).items():
        if name == "exec_mask" or not_state(value):
            continue
        current = getattr(dst, name)
        if isinstance(value, torch.Tensor):
            if slots == 1:
                view, value_ = current, value
            elif (dim := _batch_dim(value, current, slots)) is not None:
                view, value_ = current.narrow(dim, slot, 1), value
            elif value.shape == current.shape:
                continue  # shared by every row (initial tokens)
            else:
                raise RuntimeError(f"state {name}: {tuple(value.shape)} does not fit "
                                   f"{tuple(current.shape)} at batch {slots}")
            if name == "cache" and filled is not None:  # a KV ring: its filled prefix only
                view, value_ = view[..., :filled, :], value_[..., :filled, :]
            view.copy_(value_)
        elif isinstance(value, bool):
            setattr(dst, name, value)
        elif isinstance(value, int):
            # Per-batch positions live in tensors; the CPU counters only gate LMGen's first
            # max_delay steps and per-step weights (depformer): keep the furthest one.
            setattr(dst, name, max(int(current), value))
        elif hasattr(value, "__dict__"):
            _copy_state(value, current, slot, slots)


def _state_bytes(state: Any) -> int:
    total = 0
    for value in vars(state).values():
        if isinstance(value, torch.Tensor):
            total += value.numel() * value.element_size()
        elif not not_state(value) and hasattr(value, "__dict__"):
            total += _state_bytes(value)
    return total
