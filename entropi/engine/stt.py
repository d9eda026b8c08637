"""Kyutai STT's model half: the STT LM stepping on the engine's own 32-codebook Mimi encode.

Kyutai's STT LM (``kyutai/stt-1b-en_fr``: ``n_q 32, dep_q 0``, text out about 6 frames after
the audio) eats 32 codebooks of the same Mimi PersonaPlex uses. Residual VQ makes the first 8
of a 32-codebook encode the 8-codebook encode, so the engine encodes each 80 ms frame once
with 32 codebooks, steps PersonaPlex on ``[:8]`` and this model on all 32, in its own thread.
The transcriber adapter over the timeline lives in :mod:`entropi.hearing.kyutai`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entropi.config import AsrSection, Config, ModelSection
from entropi.core.constants import FRAME_RATE
from entropi.core.errors import ModelError
from entropi.core.logs import get_logger

log = get_logger(__name__)

TINY_STT_VERSION = 3
STT_CODEBOOKS = 32
PERSONAPLEX_CODEBOOKS = 8
TINY_STT_DELAY = 6  # frames, as stt-1b-en_fr (0.5 s)
EOT_HEAD = 2  # which extra head is the end-of-turn probability
STT_1B_MB = 2500  # cited VRAM of stt-1b-en_fr (bf16 weights + Mimi + caches)

TINY_STT_LM_KWARGS: dict = {
    "dim": 64, "text_card": 512, "existing_text_padding_id": 3, "n_q": STT_CODEBOOKS,
    "dep_q": 0, "card": 2048, "num_heads": 4, "num_layers": 1, "hidden_scale": 4.125,
    "causal": True, "layer_scale": None, "context": 375, "max_period": 10000,
    "gating": "silu", "norm": "rms_norm_f32", "positional_embedding": "rope",
    # The text stream lags the audio by the model's delay (structural here, learned in 1b).
    "delays": [TINY_STT_DELAY] + [0] * STT_CODEBOOKS,
    "extra_heads_num_heads": 4, "extra_heads_dim": 6,  # as stt-1b; head 2 is end of turn
}


@dataclass(frozen=True)
class TinySttPaths:
    lm_weights: Path
    lm_config: Path
    mimi_weights: Path  # the tiny PersonaPlex Mimi with 24 more codebooks (first 8 unchanged)
    mimi_config: Path
    tokenizer: Path


def ensure_tiny_stt(cache_dir: Path, seed: int) -> TinySttPaths:
    """Create (once) a tiny random STT LM and a 32-codebook copy of the tiny Mimi."""
    from entropi.engine.tiny import (
        TINY_MIMI_CONFIG,
        TINY_VERSION,
        ensure_tiny_checkpoint,
        randomize_codebooks,
    )

    tiny = ensure_tiny_checkpoint(cache_dir, seed)
    root = Path(cache_dir).expanduser() / f"tiny-stt-v{TINY_STT_VERSION}.{TINY_VERSION}-seed{seed}"
    paths = TinySttPaths(root / "stt.safetensors", root / "stt_config.json",
                         root / "mimi32.safetensors", root / "mimi32_config.json",
                         tiny.tokenizer)
    stamp = root / "READY"
    if stamp.is_file():
        return paths
    import torch
    from moshi.models.loaders import get_mimi, get_moshi_lm
    from safetensors.torch import load_file, save_file

    from entropi.text.tokenizer import TEXT_SPECIAL_IDS, TextTokenizer

    log.info("tiny_stt_create", path=str(root), seed=seed)
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed + 1)
    lm = get_moshi_lm(None, lm_kwargs=TINY_STT_LM_KWARGS, device="cpu", dtype=torch.float32)
    # A greedy random model may pick PAD or lone UTF-8 bytes for whole turns (no words at
    # all); a zero logit for those ids makes a plain piece win every frame after the delay.
    sp = TextTokenizer(tiny.tokenizer).sp
    mute = [i for i in range(TINY_STT_LM_KWARGS["text_card"])
            if i in TEXT_SPECIAL_IDS or i >= sp.get_piece_size() or sp.is_byte(i)]
    with torch.no_grad():
        lm.text_linear.weight[mute] = 0.0
    save_file({k: v.detach().contiguous() for k, v in lm.state_dict().items()},
              str(paths.lm_weights))
    mimi_cfg = json.loads(json.dumps(TINY_MIMI_CONFIG))
    mimi_cfg["quantizer"]["n_q"] = STT_CODEBOOKS
    mimi = get_mimi(None, mimi_cfg, device="cpu", num_codebooks=STT_CODEBOOKS)
    randomize_codebooks(mimi)  # the 24 new codebooks; the first 8 are overwritten next
    # Everything the 8-codebook tiny Mimi has is copied over: same encoder, decoder and
    # first 8 codebooks, so PersonaPlex sees exactly today's codes.
    missing, _ = mimi.load_state_dict(load_file(str(tiny.mimi_weights)), strict=False)
    assert all(".layers." in k for k in missing), missing
    save_file({k: v.detach().contiguous() for k, v in mimi.state_dict().items()},
              str(paths.mimi_weights))
    paths.lm_config.write_text(json.dumps(TINY_STT_LM_KWARGS, indent=1))
    paths.mimi_config.write_text(json.dumps(mimi_cfg, indent=1))
    stamp.write_text(f"{TINY_STT_VERSION}\n")
    return paths


def stt_mimi(cfg: Config) -> tuple[Path, dict] | None:
    """The Mimi to load instead of PersonaPlex's when the tiny STT is on (else None: the real
    Mimi file already holds 32 codebooks)."""
    if cfg.asr.backend != "kyutai" or cfg.asr.kyutai_source != "tiny":
        return None
    tiny = ensure_tiny_stt(cfg.model.cache_dir, cfg.model.tiny_seed)
    return tiny.mimi_weights, json.loads(tiny.mimi_config.read_text())


def encode_codebooks(mimi: Any, pcm: Any, n: int) -> Any:
    """Mimi encode with ``n`` codebooks; Mimi is left at PersonaPlex's 8 for everyone else."""
    mimi.set_num_codebooks(n)
    try:
        return mimi.encode(pcm)
    finally:
        mimi.set_num_codebooks(PERSONAPLEX_CODEBOOKS)


class SttTimeline:
    """Text pieces by frame index; written by the engine thread, read by the ASR worker."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.frames = 0
        self._pieces: list[tuple[int, str]] = []
        self._cut = 0  # frames before this were handed out already
        self.end_of_turn = 0.0  # latest end-of-turn head probability (0 without a head)

    def add(self, piece: str | None, end_of_turn: float = 0.0) -> None:
        with self._cond:
            if piece:
                self._pieces.append((self.frames, piece))
            self.frames += 1
            self.end_of_turn = end_of_turn
            self._cond.notify_all()

    def take(self, delay: int, timeout_s: float) -> str:
        """Words emitted since the last take, once ``delay`` more frames were stepped (or
        ``timeout_s`` passed: the input stopped)."""
        with self._cond:
            until = self.frames + delay
            self._cond.wait_for(lambda: self.frames >= until, timeout=timeout_s)
            cut = min(until, self.frames)
            text = "".join(p for f, p in self._pieces if self._cut <= f < cut)
            self._pieces = [(f, p) for f, p in self._pieces if f >= cut]
            waited = self.frames - (until - delay)
            self._cut = cut
        log.info("stt_turn", frames=cut, waited_frames=waited, chars=len(text.strip()))
        return text.strip()


class KyutaiStream:
    """The STT LM stepping on 32-codebook frames (engine thread only)."""

    def __init__(self, lm: Any, tokenizer: Any, delay: int, name: str) -> None:
        from moshi.models.lm import LMGen

        self.lm, self.tokenizer, self.delay, self.name = lm, tokenizer, delay, name
        self.lm_gen = LMGen(lm, use_sampling=False)
        self.lm_gen.streaming_forever(1)
        self.timeline = SttTimeline()
        self.has_head = len(getattr(lm, "extra_heads", [])) > EOT_HEAD
        self.last_token: int | None = None

    def step(self, codes: Any) -> int | None:
        """One frame's ``[1, 32, 1]`` codes → its text token (None during the delay)."""
        if self.has_head:
            res = self.lm_gen.step_with_extra_heads(codes[:, :STT_CODEBOOKS])
            out, heads = (None, None) if res is None else res
        else:
            out, heads = self.lm_gen.step(codes[:, :STT_CODEBOOKS]), None
        if out is None:
            self.timeline.add(None)
            self.last_token = None
            return None
        token = self.last_token = int(out[0, 0, 0])
        # Kyutai's semantic VAD (their stt_from_file_with_vad): head 2, class 0 = end of turn.
        eot = float(heads[EOT_HEAD][0, 0, 0]) if heads else 0.0
        self.timeline.add(self.tokenizer.piece(token), eot)
        return token


def _load_tiny(model: ModelSection, device: str) -> KyutaiStream:
    import torch
    from moshi.models.loaders import get_moshi_lm

    from entropi.text.tokenizer import TextTokenizer

    if model.source != "tiny":
        raise ModelError("asr.kyutai_source: tiny needs model.source: tiny (they share Mimi)")
    tiny = ensure_tiny_stt(model.cache_dir, model.tiny_seed)
    kwargs = json.loads(tiny.lm_config.read_text())
    lm = get_moshi_lm(str(tiny.lm_weights), lm_kwargs=kwargs, device=device,
                      dtype=torch.float32)
    return KyutaiStream(lm.eval(), TextTokenizer(tiny.tokenizer), max(kwargs["delays"]),
                        "tiny random STT")


def _load_hub(asr: AsrSection, device: str) -> KyutaiStream:
    import torch
    from moshi.models.loaders import CheckpointInfo

    from entropi.text.tokenizer import TextTokenizer

    info = CheckpointInfo.from_hf_repo(asr.kyutai_repo)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    lm = info.get_moshi(device=device, dtype=dtype)
    delay = max(max(info.lm_config.get("delays", [0])),
                round(info.stt_config.get("audio_delay_seconds", 0.5) * FRAME_RATE))
    return KyutaiStream(lm.eval(), TextTokenizer(info.tokenizer), delay, asr.kyutai_repo)




def resolve_device(device: str) -> str:
    """``auto`` is CUDA where torch sees a GPU, else the CPU."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_stt(asr: AsrSection, model: ModelSection) -> tuple[KyutaiStream, str]:
    """Load the STT LM (blocking) and say on which device; any failure is one ModelError."""
    device = resolve_device(asr.device)
    try:
        if asr.kyutai_source == "tiny":
            return _load_tiny(model, device), device
        return _load_hub(asr, device), device
    except ModelError:
        raise
    except Exception as exc:  # no network/cache, a broken file, a wrong repo
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise ModelError(f"asr.kyutai_repo {asr.kyutai_repo!r} failed to load on {device}: "
                         f"{type(exc).__name__}: {first} (connect once to cache it, or set "
                         "asr.backend: faster-whisper or none)") from None
