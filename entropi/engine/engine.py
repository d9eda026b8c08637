"""The PersonaPlex engine: persona priming (fast and reference), per-frame stepping, memory.

Lifecycle: load → step the voice part of the prefix once (voice frames + 6 silence) → snapshot
→ warm up. Each window: ``prime(prompt)`` restores the snapshot in place and prefills the text
prompt + 6 silence frames in a few batched passes; then ``step(pcm)`` once per 80 ms frame.
Not thread-safe: one thread owns an Engine (see ``worker.py``).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from entropi.config import Config, check_budget, context_budget
from entropi.core.constants import FRAME_RATE, FRAME_SIZE
from entropi.core.errors import InputError
from entropi.core.logs import get_logger
from entropi.engine.model import Models, device_name, load_models, module_bytes, peak_bytes
from entropi.engine.prefill import (
    CHUNK_SIZES,
    feed_batched,
    feed_embeddings,
    step_forced,
    sync_lmgen,
    write_column,
)
from entropi.engine.prompts import SINE_CODES, Prefix, build_prefix, system_text
from entropi.engine.snapshot import Snapshot
from entropi.engine.voice import VoicePrompt, load_voice_file

log = get_logger(__name__)

# Voice snapshots kept for callers' ``voice_prompt`` (the configured voice's included and never
# evicted); each holds the voice's KV prefix, so a few, not one per file in the folder.
VOICE_CACHE = 3


@dataclass(frozen=True)
class FrameOut:
    pcm: np.ndarray  # (1920,) float32, 24 kHz
    token: int  # the text stream's token for this frame
    text: str | None  # its text piece; None for PAD/EPAD/BOS/EOS


@dataclass(frozen=True)
class VoiceSwitch:
    name: str  # the voice file's name
    frames: int
    ms: float
    cached: bool  # its snapshot was already built (no LM pass)


@dataclass(frozen=True)
class PrimeStats:
    ms: float
    tokens: int  # text-prompt tokens fed (``<system> … <system>``)
    passes: int  # transformer calls (fast path) or LM steps (reference)


class Engine:
    def __init__(self, models: Models, cfg: Config, voice: VoicePrompt) -> None:
        from moshi.models.lm import LMGen
        from moshi.utils.compile import CUDAGraphed

        self.cfg = cfg
        self.models = models
        self.lm, self.mimi, self.tokenizer = models.lm, models.mimi, models.tokenizer
        self.device = models.device
        self.voice = voice
        s = cfg.sampling
        self.lm_gen = LMGen(self.lm, use_sampling=s.use_sampling, temp=s.audio_temp,
                            temp_text=s.text_temp, top_k=s.audio_topk, top_k_text=s.text_topk)
        graphs = self.device.type == "cuda" and cfg.runtime.cuda_graphs
        # One graph per fixed prefill size and one per whole Mimi call (CUDA only).
        self._prefill_runners = {n: CUDAGraphed(self.lm.forward_text, disable=not graphs)
                                 for n in CHUNK_SIZES if n <= self.lm.context}
        self._encode = CUDAGraphed(self.mimi.encode, disable=not graphs)
        self._decode = CUDAGraphed(self.mimi.decode, disable=not graphs)
        self._pcm_in = torch.zeros(1, 1, FRAME_SIZE, device=self.device)
        self._host = torch.zeros(FRAME_SIZE + 1, pin_memory=self.device.type == "cuda")
        self._n_audio = self.lm.dep_q
        self.stt: Any = None  # a KyutaiStream (asr.backend: kyutai), stepped after each frame
        with torch.inference_mode():
            self.lm_gen.streaming_forever(1)
            self.mimi.streaming_forever(1)
            self._voice_ms = self._prime_voice()
            self.snapshot = self._take_snapshot()
        self._default_voice = str(cfg.voice.prompt_path)
        self.voice_key = self._default_voice
        self._voices: OrderedDict[str, tuple[VoicePrompt, Snapshot]] = OrderedDict(
            {self.voice_key: (voice, self.snapshot)})
        self.voice_builds = 0  # snapshots built for other voices (cache misses)
        self.voice_cache = 0  # voices kept beyond VOICE_CACHE (a batched engine: one per slot)

    def _take_snapshot(self) -> Snapshot:
        return Snapshot({"lm_gen": self.lm_gen, "lm": self.lm, "mimi": self.mimi})

    # ------------------------------------------------------------------ prefix

    @property
    def voice_frames(self) -> int:
        return self.voice.frames

    def prompt_ids(self, prompt: str) -> list[int]:
        return self.tokenizer.encode(system_text(prompt))

    def prefix(self, prompt: str) -> Prefix:
        prefix = build_prefix(self.voice.codes, self.prompt_ids(prompt))
        budget = self.cfg.conversation.prompt_token_budget
        if prefix.frames >= self.lm.context:
            raise InputError(
                f"system prompt of {prefix.prompt_tokens} tokens: the persona prefix "
                f"({prefix.frames} frames) does not fit runtime.context_window "
                f"({self.lm.context}); shorten the prompt (budget: {budget} tokens)")
        if prefix.prompt_tokens > budget + 8:  # + the <system> tags and their spaces
            # Degrade, don't stall: the window just has less room before the ring wraps.
            log.warning("prompt_over_budget", tokens=prefix.prompt_tokens, budget=budget)
        return prefix

    def _columns(self, prefix: Prefix) -> np.ndarray:
        return prefix.columns(list(self.lm.delays))

    def _prime_voice(self) -> float:
        """Feed voice + 6 silence positions once (batched); LMGen synced for the snapshot."""
        started = time.perf_counter()
        cols = self._columns(self.prefix(""))
        end, start = build_prefix(self.voice.codes, []).voice_end, 0
        if self.voice.embeddings is not None:
            feed_embeddings(self.lm, self.voice.embeddings, batched=True)
            start = self.voice.frames - 1
        feed_batched(self.lm, cols, start, end)
        sync_lmgen(self.lm_gen, cols, end)
        return (time.perf_counter() - started) * 1000

    # ------------------------------------------------------------------ voices

    @torch.inference_mode()
    def use_voice(self, path: Path) -> VoiceSwitch:
        """Make ``path`` the voice the next ``prime`` starts from (between calls only).

        A voice seen recently swaps in its cached snapshot; a new one is loaded, checked
        against the context budget (:class:`InputError` if it does not fit) and stepped once
        like the configured voice at load. The configured voice is never evicted.
        """
        started, key = time.perf_counter(), str(path)
        entry = self._voices.get(key)
        cached = entry is not None
        if entry is None:
            voice = self._load_voice(Path(path))
            self._check_voice(Path(path).name, voice)
            entry = self._build_voice(voice)
            self._voices[key] = entry
            self.voice_builds += 1
            self._evict()
        self._voices.move_to_end(key)
        self.voice, self.snapshot = entry
        self.voice_key = key
        self.snapshot.restore()
        ms = (time.perf_counter() - started) * 1000
        out = VoiceSwitch(Path(path).name, self.voice.frames, ms, cached)
        log.info("voice_selected", voice=out.name, frames=out.frames, cached=out.cached,
                 ms=round(ms, 1))
        return out

    def _load_voice(self, path: Path) -> VoicePrompt:
        # A WAV is encoded by Mimi in its own streaming context: set the live (primed) Mimi
        # state aside and put the very same objects back (CUDA graphs point into them).
        live = self.mimi.get_streaming_state()
        self.mimi._stop_streaming()
        try:
            # A WAV is cut at voice.max_prompt_seconds as at load; a cached one that is too
            # long gets the short budget message below (no server path in it for a caller).
            wav = path.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3")
            return load_voice_file(path, model_dim=self.lm.dim, mimi=self.mimi,
                                   max_frames=voice_frame_limit(self.cfg) if wav else None)
        finally:
            self.mimi.set_streaming_state(live)

    def _check_voice(self, name: str, voice: VoicePrompt) -> None:
        budget = context_budget(self.cfg, voice.frames)
        allowed = min(voice_frame_limit(self.cfg), budget.context_window - budget.needed
                      + voice.frames)
        if voice.frames > allowed:
            raise InputError(f"voice {name!r} is {voice.frames} frames "
                             f"({voice.frames / FRAME_RATE:.1f} s); this server's context "
                             f"budget allows {allowed} frames")
        check_budget(self.cfg, voice.frames)  # the same rule the daemon applies at load

    def _build_voice(self, voice: VoicePrompt) -> tuple[VoicePrompt, Snapshot]:
        old = self.voice
        self.lm_gen.reset_streaming()
        self.mimi.reset_streaming()
        self.voice = voice
        try:
            self._prime_voice()
            return voice, self._take_snapshot()
        except BaseException:
            self.voice = old
            self.snapshot.restore()
            raise

    def _evict(self) -> None:
        while len(self._voices) > max(VOICE_CACHE, self.voice_cache):
            oldest = next(k for k in self._voices if k != self._default_voice)
            del self._voices[oldest]
            log.info("voice_evicted", voice=Path(oldest).name)

    def _finish(self, prefix: Prefix, cols: np.ndarray) -> None:
        """The last prefix step runs for real (its output column is the model's first free
        text and semantic token); then the delayed codebooks of that column get the last
        forced frame's codes, as forcing would have written them."""
        n = prefix.frames
        write_column(self.lm_gen, cols, n - 1, slice(0, 1 + self._n_audio))
        user = torch.tensor(SINE_CODES, device=self.device).view(1, -1, 1)
        self.lm_gen.step(user)
        state = self.lm_gen._streaming_state
        delayed = [k for k in range(1, 1 + self._n_audio) if self.lm.delays[k] > 0]
        codes = [int(prefix.agent[k - 1, n - self.lm.delays[k]]) for k in delayed]
        state.cache[0, delayed, n % state.cache.shape[2]] = torch.tensor(codes,
                                                                        device=self.device)

    def _seed(self) -> None:
        if self.cfg.sampling.seed is not None:
            torch.manual_seed(self.cfg.sampling.seed)

    @torch.inference_mode()
    def prime(self, prompt: str) -> PrimeStats:
        """Restore the voice snapshot, prefill ``<system> {prompt} <system>`` + 6 silence."""
        started = time.perf_counter()
        prefix = self.prefix(prompt)
        cols = self._columns(prefix)
        self.snapshot.restore()
        self._seed()
        passes = feed_batched(self.lm, cols, prefix.voice_end, prefix.frames - 1,
                              self._prefill_runners)
        sync_lmgen(self.lm_gen, cols, prefix.frames - 1)
        self._finish(prefix, cols)
        return self._stats(started, prefix, passes + 1, "prime")

    @torch.inference_mode()
    def prime_reference(self, prompt: str) -> PrimeStats:
        """The fork's way: reset everything and step the whole prefix one frame at a time."""
        started = time.perf_counter()
        prefix = self.prefix(prompt)
        cols = self._columns(prefix)
        self.lm_gen.reset_streaming()
        self.mimi.reset_streaming()
        self._seed()
        steps, start = 0, 0
        if self.voice.embeddings is not None:
            steps = feed_embeddings(self.lm, self.voice.embeddings, batched=False)
            start = self.voice.frames - 1
            sync_lmgen(self.lm_gen, cols, start)
        steps += step_forced(self.lm_gen, cols, start, prefix.frames - 1)
        self._finish(prefix, cols)
        return self._stats(started, prefix, steps + 1, "prime_reference")

    def _stats(self, started: float, prefix: Prefix, passes: int, event: str) -> PrimeStats:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        ms = (time.perf_counter() - started) * 1000
        log.debug(event, ms=round(ms, 2), tokens=prefix.prompt_tokens, passes=passes)
        return PrimeStats(ms=ms, tokens=prefix.prompt_tokens, passes=passes)

    # ------------------------------------------------------------------ frames

    @torch.inference_mode()
    def step_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """LM step alone: user codes ``[1, 8, 1]`` → ``[1, 9, 1]`` (text + agent codes)."""
        out = self.lm_gen.step(codes)
        assert out is not None, "step before prime()"
        return out

    @torch.inference_mode()
    def step(self, pcm: np.ndarray) -> FrameOut:
        """One 80 ms frame: Mimi encode → LM step → Mimi decode; one device→host copy."""
        if pcm.shape != (FRAME_SIZE,):
            raise InputError(f"engine.step: expected {FRAME_SIZE} samples, got {pcm.shape}")
        self._pcm_in.view(-1).copy_(torch.from_numpy(np.ascontiguousarray(pcm, np.float32)))
        if self.stt is None:
            out = self.step_codes(self._encode(self._pcm_in))
        else:  # one 32-codebook encode: PersonaPlex gets its first 8, the STT model all 32
            codes = self._encode_stt(self._pcm_in)
            out = self.step_codes(codes[:, :8])
            self.stt.step(codes)
        audio = self._decode(out[:, 1:1 + self._n_audio])
        # Token rides along with the PCM (exact in float32) so one copy brings both back.
        packed = torch.cat([audio.view(-1).float(), out[0, 0].float()])
        self._host.copy_(packed)
        token = int(self._host[FRAME_SIZE])
        return FrameOut(self._host[:FRAME_SIZE].numpy().copy(), token,
                        self.tokenizer.piece(token))

    def attach_stt(self, stream: Any) -> None:
        """Step ``stream`` (Kyutai STT) on every frame's 32-codebook encode from now on."""
        from moshi.utils.compile import CUDAGraphed

        from entropi.engine.stt import STT_CODEBOOKS, encode_codebooks

        graphs = self.device.type == "cuda" and self.cfg.runtime.cuda_graphs
        self._encode_stt = CUDAGraphed(
            lambda x: encode_codebooks(self.mimi, x, STT_CODEBOOKS), disable=not graphs)
        self.stt = stream

    # ------------------------------------------------------------------ warm-up, memory

    @torch.inference_mode()
    def warm_up(self) -> float:
        """Run every prefill chunk size and a few frames once, then restore the snapshot, so
        the first real window pays no first-call cost (CUDA graph capture, allocator)."""
        started = time.perf_counter()
        cols = self._columns(build_prefix(self.voice.codes, [3] * max(self._prefill_runners)))
        start = build_prefix(self.voice.codes, []).voice_end
        for size, runner in sorted(self._prefill_runners.items()):
            for _ in range(2):  # CUDAGraphed captures on its second call
                self.snapshot.restore()
                if start + size <= cols.shape[1] and start + size <= self.lm.context:
                    feed_batched(self.lm, cols, start, start + size, {size: runner}, (size,))
        self.prime(self.cfg.conversation.first_prompt)
        silence = np.zeros(FRAME_SIZE, dtype=np.float32)
        for _ in range(3):
            self.step(silence)
        self.snapshot.restore()
        return (time.perf_counter() - started) * 1000

    def memory_stats(self) -> dict[str, Any]:
        return {"weights_bytes": module_bytes(self.lm) + module_bytes(self.mimi),
                "peak_bytes": peak_bytes(self.device), "device": device_name(self.device),
                "snapshot_bytes": self.snapshot.nbytes}


def voice_frame_limit(cfg: Config) -> int:
    return math.ceil(cfg.voice.max_prompt_seconds * FRAME_RATE)


def load_engine(cfg: Config) -> Engine:
    """Load, quantise, prime the voice snapshot and warm up (heavy, synchronous)."""
    started = time.perf_counter()
    models = load_models(cfg)
    with torch.inference_mode():
        voice = load_voice_file(cfg.voice.prompt_path, model_dim=models.lm.dim,
                                max_frames=voice_frame_limit(cfg), mimi=models.mimi)
    check_budget(cfg, voice.frames)
    engine = Engine(models, cfg, voice)
    warm_ms = engine.warm_up()
    log.info("engine_ready", seconds=round(time.perf_counter() - started, 2),
             voice_frames=voice.frames, voice_ms=round(engine._voice_ms, 1),
             warm_up_ms=round(warm_ms, 1), **engine.memory_stats())
    return engine


