"""Load the LM, Mimi and the tokenizer on the configured device/dtype; quantise; measure memory."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, replace
from typing import Any

import torch

from entropi.config import Config
from entropi.core.errors import ModelError
from entropi.core.logs import get_logger
from entropi.engine.checkpoints import (
    Checkpoint,
    keep_uncut_depformer_span,
    load_lm_state,
    resolve_checkpoint,
)
from entropi.engine.quant import resolve_and_log
from entropi.text.tokenizer import TextTokenizer

log = get_logger(__name__)

FULL_LM_PARAMS = 7.2e9  # PersonaPlex cut to dep_q 8 (14.3 GB of bf16 weights on the H100 run)
QUANT_OPTIONS = "none, int8 (any device), int4 (CUDA), fp8 (CUDA, compute capability >= 8.9)"


@dataclass
class Models:
    lm: Any  # moshi LMModel (dep_q 8)
    mimi: Any  # moshi MimiModel
    tokenizer: TextTokenizer
    device: torch.device
    dtype: torch.dtype
    checkpoint: Checkpoint
    quantization: str = "none"  # the format in use (``auto`` resolved)


def pick_device(cfg: Config) -> torch.device:
    want = cfg.runtime.device
    if want == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"runtime.device: {want!r} but no CUDA GPU is visible to torch; "
                         f"use device: cpu (or auto)")
    return torch.device(want)


def pick_dtype(cfg: Config, device: torch.device) -> torch.dtype:
    name = cfg.runtime.dtype
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def check_quantization(quant: str, device: torch.device) -> None:
    """Refuse, with the device named, what this device cannot run (before loading weights)."""
    if quant in ("none", "int8", "auto"):  # auto picks only what the device can run
        return
    if device.type != "cuda":
        raise ModelError(f"runtime.quantization: {quant} needs a CUDA GPU but the device is "
                         f"{device_name(device)}; use one of {QUANT_OPTIONS}")
    if quant == "fp8":
        major, minor = torch.cuda.get_device_capability(device)
        if (major, minor) < (8, 9):
            raise ModelError(
                f"runtime.quantization: fp8 needs compute capability >= 8.9 (Ada/Hopper) but "
                f"{torch.cuda.get_device_name(device)} is {major}.{minor}; use int8 or int4")


def quantize_lm(lm: Any, quant: str, device: torch.device) -> None:
    """torchao weight quantisation of every Linear, after the weights are loaded."""
    check_quantization(quant, device)
    if quant == "none":
        return
    from torchao.quantization import quantize_

    if quant == "int8":
        from torchao.quantization import Int8WeightOnlyConfig

        config: Any = Int8WeightOnlyConfig()
    elif quant == "int4":
        from torchao.quantization import Int4WeightOnlyConfig

        if lm.dtype != torch.bfloat16:
            raise ModelError("runtime.quantization: int4 needs bf16 weights; set runtime.dtype: "
                             "bfloat16 (or auto)")
        config = Int4WeightOnlyConfig(group_size=128, int4_packing_format="tile_packed_to_4d")
    else:
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow

        config = Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())
    try:
        quantize_(lm, config)
    except Exception as exc:  # torchao raises assorted errors for unsupported kernels
        raise ModelError(f"runtime.quantization: {quant} failed on {device_name(device)} "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); "
                         f"use one of {QUANT_OPTIONS}") from None


def tensor_bytes(t: torch.Tensor) -> int:
    """Storage of a tensor, looking inside torchao's quantised tensor subclasses."""
    flatten = getattr(t, "__tensor_flatten__", None)
    if flatten is not None and type(t) is not torch.nn.Parameter and type(t) is not torch.Tensor:
        names, _ = flatten()
        return sum(tensor_bytes(getattr(t, n)) for n in names)
    return t.numel() * t.element_size()


def module_bytes(module: torch.nn.Module) -> int:
    # parameters()/buffers() already skip shared tensors.
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(tensor_bytes(t.data if isinstance(t, torch.nn.Parameter) else t) for t in tensors)


def peak_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    # CPU: the process's peak resident set (Linux reports KiB).
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def load_models(cfg: Config) -> Models:
    device = pick_device(cfg)
    dtype = pick_dtype(cfg, device)
    check_quantization(cfg.runtime.quantization, device)  # fail before the slow part
    if cfg.runtime.torch_threads:
        torch.set_num_threads(cfg.runtime.torch_threads)
    if device.type == "cuda" and not cfg.runtime.cuda_graphs:
        os.environ["NO_CUDA_GRAPH"] = "1"  # moshi reads it at every CUDAGraphed call
    ckpt = resolve_checkpoint(cfg)
    lm_kwargs = dict(ckpt.lm_kwargs, context=cfg.runtime.context_window)
    lm = load_lm_state(ckpt.moshi_weights, lm_kwargs, dtype, device)
    quant = resolve_and_log(cfg, lm, device)
    quantize_lm(lm, quant, device)
    if cfg.asr.backend == "kyutai":  # Kyutai STT eats 32 codebooks of this same Mimi
        from entropi.engine.stt import stt_mimi

        if (swap := stt_mimi(cfg)) is not None:
            ckpt = replace(ckpt, mimi_weights=swap[0], mimi_config=swap[1])
    mimi = load_mimi(ckpt, device)
    tokenizer = TextTokenizer(ckpt.tokenizer)
    if tokenizer.vocab_size > lm.text_card:
        raise ModelError(f"{ckpt.tokenizer}: {tokenizer.vocab_size} pieces but the LM's text "
                         f"vocabulary has {lm.text_card}; tokenizer and model do not match")
    log.info("models_loaded", device=device_name(device), dtype=str(dtype).removeprefix("torch."),
             quantization=quant, context=cfg.runtime.context_window,
             lm_bytes=module_bytes(lm), mimi_bytes=module_bytes(mimi))
    return Models(lm, mimi, tokenizer, device, dtype, ckpt, quant)


def load_mimi(ckpt: Checkpoint, device: torch.device | str = "cpu") -> Any:
    from moshi.models.loaders import get_mimi

    try:
        mimi = get_mimi(ckpt.mimi_weights, ckpt.mimi_config, device=device, num_codebooks=8)
    except RuntimeError as exc:
        raise ModelError(f"{ckpt.mimi_weights}: not a matching Mimi checkpoint "
                         f"({str(exc).splitlines()[0][:160]}); fix model.mimi_weight") from None
    except Exception as exc:  # safetensors header / IO errors
        raise ModelError(f"{ckpt.mimi_weights}: unreadable Mimi checkpoint ({exc}); "
                         f"re-download it or fix model.mimi_weight") from None
    return mimi


def load_random_full(cfg: Config) -> Models:
    """The real PersonaPlex architecture (dep_q 8 after the cut) and the real Mimi with random
    weights: benchmark figures on a GPU without the gated files. Text uses the tiny tokenizer."""
    from moshi.models.lm import LMModel

    from entropi.engine.checkpoints import personaplex_lm_kwargs
    from entropi.engine.tiny import ensure_tiny_checkpoint

    device = pick_device(cfg)
    dtype = pick_dtype(cfg, device)
    check_quantization(cfg.runtime.quantization, device)
    need = int(FULL_LM_PARAMS * torch.empty(0, dtype=dtype).element_size())
    if device.type == "cpu":
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if ram < need * 1.2:
            raise ModelError(f"--random-weights full: the 7B model needs ~{need / 2**30:.0f} GiB "
                             f"in {dtype} but this machine has {ram / 2**30:.0f} GiB of RAM; "
                             f"run it on a CUDA GPU, or use --random-weights tiny")
    tiny = ensure_tiny_checkpoint(cfg.model.cache_dir, cfg.model.tiny_seed)
    kwargs = dict(personaplex_lm_kwargs(), context=cfg.runtime.context_window)
    torch.manual_seed(cfg.model.tiny_seed)
    lm = keep_uncut_depformer_span(LMModel(device=device, dtype=dtype, **kwargs).eval())
    quant = resolve_and_log(cfg, lm, device)
    quantize_lm(lm, quant, device)
    ckpt = Checkpoint(tiny.moshi_weights, tiny.mimi_weights, tiny.tokenizer, kwargs, None)
    from moshi.models.loaders import get_mimi

    mimi = get_mimi(None, None, device=device, num_codebooks=8)
    return Models(lm, mimi, TextTokenizer(tiny.tokenizer), device, dtype, ckpt, quant)
