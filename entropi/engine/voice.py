"""Voice prompts: WAV → Mimi codes, the project's ``*.voice.pt`` cache and PersonaPlex presets.

A voice is the agent stream of the prefix's first phase. It comes as Mimi codes ``[8, V]``
(from a WAV or our cache) or as a PersonaPlex ``.pt`` preset (``embeddings [V-1, 1, 1, dim]``
are the transformer inputs of the first V-1 positions, ``cache [1, 17, 4]`` the fork's delay
cache, which still holds the codes the positions after them need).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from entropi.core.constants import FRAME_SIZE, SAMPLE_RATE
from entropi.core.errors import InputError
from entropi.core.logs import get_logger

log = get_logger(__name__)

TARGET_LUFS = -24.0
VOICE_SUFFIX = ".voice.pt"
FORMAT = "entropi-voice"
FORMAT_VERSION = 1
MIMI_CARD = 2048  # codes per Mimi codebook (PersonaPlex, Moshi and the tiny model alike)


@dataclass(frozen=True)
class VoicePrompt:
    codes: np.ndarray  # [8, V] int64; for presets only the last two frames are meaningful
    embeddings: Any | None = None  # torch [V-1, dim] for PersonaPlex presets, else None
    source: str = ""

    @property
    def frames(self) -> int:
        return int(self.codes.shape[1])


# --------------------------------------------------------------------------- loudness


def _biquad_response(b: tuple[float, float, float], a: tuple[float, float, float],
                     n_fft: int, rate: int) -> np.ndarray:
    z = np.exp(-1j * 2 * np.pi * np.fft.rfftfreq(n_fft, 1.0 / rate) / rate)
    return (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)


def _k_weighting(n_fft: int, rate: int) -> np.ndarray:
    """BS.1770 K-weighting (high shelf +4 dB at 1.5 kHz, high-pass 38 Hz) as a spectrum."""
    g, w0 = 10 ** (4.0 / 40), 2 * math.pi * 1500.0 / rate
    alpha, cos = math.sin(w0) / (2 * (1 / math.sqrt(2))), math.cos(w0)
    sq = 2 * math.sqrt(g) * alpha
    shelf = _biquad_response(
        (g * ((g + 1) + (g - 1) * cos + sq), -2 * g * ((g - 1) + (g + 1) * cos),
         g * ((g + 1) + (g - 1) * cos - sq)),
        ((g + 1) - (g - 1) * cos + sq, 2 * ((g - 1) - (g + 1) * cos),
         (g + 1) - (g - 1) * cos - sq), n_fft, rate)
    w0 = 2 * math.pi * 38.0 / rate
    alpha, cos = math.sin(w0) / (2 * 0.5), math.cos(w0)
    high_pass = _biquad_response(((1 + cos) / 2, -(1 + cos), (1 + cos) / 2),
                                 (1 + alpha, -2 * cos, 1 - alpha), n_fft, rate)
    return shelf * high_pass


def loudness_lufs(pcm: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    """Integrated loudness of a mono signal (BS.1770-4 gating; filter applied by FFT)."""
    pcm = np.asarray(pcm, dtype=np.float64)
    n_fft = 1 << math.ceil(math.log2(pcm.size + rate))  # pad: the IIR tail must not wrap
    weighted = np.fft.irfft(np.fft.rfft(pcm, n_fft) * _k_weighting(n_fft, rate), n_fft)[: pcm.size]
    block, hop = int(0.4 * rate), int(0.1 * rate)
    if pcm.size <= block:
        powers = np.array([np.mean(weighted**2)])
    else:
        starts = np.arange(0, pcm.size - block + 1, hop)
        csum = np.concatenate([[0.0], np.cumsum(weighted**2)])
        powers = (csum[starts + block] - csum[starts]) / block
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10 * np.log10(powers)
    gated = powers[levels > -70.0]
    if gated.size == 0:
        return -math.inf
    relative = -0.691 + 10 * math.log10(gated.mean()) - 10.0
    gated = powers[(levels > -70.0) & (levels > relative)]
    return float(-0.691 + 10 * math.log10(gated.mean()))


def normalize_loudness(pcm: np.ndarray, target: float = TARGET_LUFS) -> np.ndarray:
    level = loudness_lufs(pcm)
    if not math.isfinite(level):
        return pcm.astype(np.float32)
    return np.clip(pcm * 10 ** ((target - level) / 20), -1.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- WAV → codes


def read_voice_wav(path: Path, max_seconds: float | None = None) -> np.ndarray:
    """Channel 0 at 24 kHz, −24 LUFS; InputError for unreadable, empty, silent or long files."""
    import sphn

    from entropi.audio.resample import resample

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: voice file not found; check the path "
                         f"(or voice.prompt_dir/prompt_file)")
    try:
        pcm, rate = sphn.read(str(path))
    except Exception as exc:  # sphn raises plain exceptions with decoder messages
        raise InputError(f"{path}: not a readable audio file ({exc}); give a WAV file") from None
    if pcm.ndim != 2 or pcm.shape[1] == 0:
        raise InputError(f"{path}: the audio is empty; record a few seconds of the voice")
    if not np.isfinite(pcm[0]).all():  # float WAVs can hold NaN/inf: no level, no codes
        raise InputError(f"{path}: holds NaN or infinite samples; export the voice again")
    mono = resample(np.asarray(pcm[0], dtype=np.float32), int(rate), SAMPLE_RATE)
    seconds = mono.size / SAMPLE_RATE
    if max_seconds is not None and seconds > max_seconds + 1e-6:
        raise InputError(f"{path}: {seconds:.1f} s is longer than voice.max_prompt_seconds "
                         f"({max_seconds:g} s, context budget); trim the WAV or raise the limit")
    if not math.isfinite(loudness_lufs(mono)):
        raise InputError(f"{path}: the audio is silent; record the voice again")
    return normalize_loudness(mono)


def encode_pcm(mimi: Any, pcm: np.ndarray) -> np.ndarray:
    """Mimi codes ``[8, V]`` for 24 kHz mono PCM, 1920-sample frames (last one zero-padded)."""
    import torch

    frames = max(1, math.ceil(pcm.size / FRAME_SIZE))
    padded = np.zeros(frames * FRAME_SIZE, dtype=np.float32)
    padded[: pcm.size] = pcm
    device = next(mimi.parameters()).device
    x = torch.from_numpy(padded).to(device).view(1, 1, -1)
    out = []
    with torch.inference_mode(), mimi.streaming(1):
        for i in range(frames):
            out.append(mimi.encode(x[:, :, i * FRAME_SIZE:(i + 1) * FRAME_SIZE]))
    return torch.cat(out, dim=-1)[0].cpu().numpy().astype(np.int64)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- cached formats


def save_voice(path: Path, codes: np.ndarray, source: Path, mimi_id: str) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "version": FORMAT_VERSION,
                "codes": torch.from_numpy(codes.astype(np.int16)),
                "source": source.name, "source_sha256": file_sha256(source),
                "mimi": mimi_id}, tmp)
    tmp.replace(path)


def read_voice_meta(path: Path) -> dict[str, Any] | None:
    """Metadata of a ``*.voice.pt`` file, or None if it is not one (or unreadable)."""
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # any unreadable file simply is not an up-to-date cache
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return data


def load_voice_file(path: Path, model_dim: int | None = None, max_frames: int | None = None,
                    mimi: Any = None) -> VoicePrompt:
    """A WAV, our ``*.voice.pt`` or a PersonaPlex ``.pt`` preset → :class:`VoicePrompt`."""
    path = Path(path)
    if path.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3"):
        if mimi is None:
            raise InputError(f"{path}: a WAV voice needs the Mimi codec loaded")
        seconds = None if max_frames is None else max_frames * FRAME_SIZE / SAMPLE_RATE
        return VoicePrompt(encode_pcm(mimi, read_voice_wav(path, seconds)), source=str(path))
    if not path.is_file():
        raise InputError(f"{path}: voice file not found; check voice.prompt_dir/prompt_file "
                         f"(or run `entropi cache-voice VOICE.wav -o {path.parent}`)")
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"{path}: not a voice preset ({type(exc).__name__}); give a WAV, an "
                         f"entropi .voice.pt or a PersonaPlex .pt preset") from None
    tensors = isinstance(data, dict) and all(  # a damaged file must not raise AttributeError
        isinstance(v, torch.Tensor) for k, v in data.items() if k in ("codes", "embeddings",
                                                                        "cache"))
    if tensors and data.get("format") == FORMAT and "codes" in data:
        codes = data["codes"].long().numpy()
        if codes.ndim != 2 or codes.shape[0] != 8 or codes.shape[1] == 0:
            raise InputError(f"{path}: codes have shape {tuple(codes.shape)}, expected [8, V]; "
                             f"re-create it with `entropi cache-voice`")
        voice = VoicePrompt(codes, source=str(path))
    elif tensors and {"embeddings", "cache"} <= set(data):
        voice = _from_preset(path, data["embeddings"], data["cache"], model_dim)
    else:
        raise InputError(f"{path}: unknown voice format; give a WAV, an entropi .voice.pt or a "
                         f"PersonaPlex .pt preset ({{'embeddings', 'cache'}})")
    if voice.codes.min() < 0 or voice.codes.max() >= MIMI_CARD:  # would index past the table
        raise InputError(f"{path}: holds codes outside 0-{MIMI_CARD - 1} (min "
                         f"{voice.codes.min()}, max {voice.codes.max()}); the file is damaged: "
                         f"re-create it (entropi cache-voice) or use another voice")
    if max_frames is not None and voice.frames > max_frames:
        raise InputError(f"{path}: {voice.frames} frames exceed voice.max_prompt_seconds "
                         f"({max_frames} frames, context budget); use a shorter voice")
    return voice


def _from_preset(path: Path, emb: Any, cache: Any, model_dim: int | None) -> VoicePrompt:
    """The fork's step ``f`` writes frame ``f`` at cache column ``(f + d_k) % CT`` and feeds
    column ``f-1``; so its V-1 embeddings are positions 0…V-2 and its final cache holds the
    codes positions V-1 and V read (frame V-1, and frame V-2's delayed codebooks)."""
    from entropi.engine.prompts import N_STREAMS

    if emb.dim() != 4 or emb.shape[1:3] != (1, 1) or cache.dim() != 3 or cache.shape[:2] != (
            1, N_STREAMS):
        raise InputError(f"{path}: preset shapes embeddings {tuple(emb.shape)}, cache "
                         f"{tuple(cache.shape)}; expected [V-1, 1, 1, dim] and [1, 17, CT]")
    if model_dim is not None and emb.shape[-1] != model_dim:
        raise InputError(f"{path}: preset embeddings have dim {emb.shape[-1]}, the model has "
                         f"{model_dim}; the preset belongs to another model")
    v, ct = emb.shape[0] + 1, cache.shape[2]
    if v < 4:
        raise InputError(f"{path}: preset holds {v} voice frames; at least 4 are needed")
    codes = np.zeros((8, v), dtype=np.int64)
    col = cache[0, 1:9].long().numpy()
    codes[0, v - 1] = col[0, (v - 1) % ct]  # semantic: no delay
    codes[1:, v - 1] = col[1:, v % ct]  # acoustic codebooks: delayed by one
    if v >= 2:
        codes[1:, v - 2] = col[1:, (v - 1) % ct]
    return VoicePrompt(codes, embeddings=emb[:, 0, 0, :].float(), source=str(path))
