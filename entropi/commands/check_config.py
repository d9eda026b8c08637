"""``entropi check-config``: validate a config and show what it resolves to."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

from entropi.commands import add_config_option, load_for_command
from entropi.config import AsrSection, Config, check_budget, masked_dump
from entropi.engine.vram import estimate_vram_gb


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check-config", parents=parents,
                       help="validate a config; print it (secrets masked), the context budget "
                            "and estimated GPU memory",
                       description="Validate a config file without loading any model: keys, "
                                   "ranges, the context budget, and every file and folder "
                                   "`run` would read or write.")
    add_config_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def demo_model_warning(cfg) -> str | None:
    """SmolLM2-135M writes junk into prompts and profiles: fine for the demo and the tests,
    not for real conversations."""
    from entropi.llm.embedded import is_demo_model

    sm = cfg.secondary_model
    if cfg.model.source == "tiny" or sm.backend != "embedded":
        return None
    if not is_demo_model(sm.embedded):
        return None
    return ("warning: secondary_model.embedded: SmolLM2-135M is the demo/test model; for real "
            "use set hf_repo/hf_file (config.yaml: Qwen2.5-1.5B-Instruct) or gguf")


def has_nvidia_gpu() -> bool:
    """The NVIDIA driver lists a GPU (no torch import: check-config stays fast)."""
    gpus = Path("/proc/driver/nvidia/gpus")
    try:
        return any(gpus.iterdir())
    except OSError:
        return False


def first_day_warnings(cfg: Config, config_path: Path) -> list[str]:
    """What would surprise an operator at the first start: the CPU, the gated model without a
    token, gigabytes still to download (the service's start timeout runs meanwhile)."""
    from entropi.commands.fetch import download_gb, plan

    out = []
    if cfg.runtime.device == "auto" and cfg.model.source != "tiny" and not has_nvidia_gpu():
        out.append("warning: runtime.device: auto → cpu (no NVIDIA GPU found); PersonaPlex 7B "
                   "on a CPU is far slower than real time")
    missing = [i for i in plan(cfg) if not i.cached()]  # the cache only, no network
    gated = any(i.name.startswith(f"{cfg.model.hf_repo}/") for i in missing)
    if gated and cfg.model.hf_token is None and not _hub_token():
        out.append(f"warning: HF_TOKEN not set: {cfg.model.hf_repo} is gated; accept its "
                   "licence on Hugging Face and export HF_TOKEN (the service reads "
                   "/etc/entropi/entropi.env)")
    gb, unknown = download_gb(missing)
    if gb or unknown:
        more = f" and {unknown} of unknown size" if unknown else ""
        out.append(f"warning: not cached: {gb:.1f} GB to download{more} at the first start; "
                   f"run `entropi fetch --config {config_path}` first")
    return out


def _hub_token() -> bool:
    from huggingface_hub import get_token

    return bool(os.environ.get("HF_TOKEN") or get_token())


def run(args: argparse.Namespace) -> int:
    cfg = load_for_command(args)
    budget = check_budget(cfg)
    from entropi.service.preflight import preflight

    preflight(cfg)  # the files and folders `run` would need, before any model loads
    warnings = [w for w in (demo_model_warning(cfg), *first_day_warnings(cfg, args.config))
                if w]
    for warning in warnings:
        print(warning, file=sys.stderr)
    slots = cfg.runtime.max_conversations
    vram = {q: estimate_vram_gb(q, cfg.runtime.context_window, slots)
            for q in ("none", "int8", "int4", "fp8")}
    if args.json:
        print(json.dumps({
            "config": masked_dump(cfg),
            "budget": dict(budget.rows()) | {"fits": budget.fits},
            "vram_estimate_gb": vram,
            "asr": asr_summary(cfg.asr),
            "warnings": warnings,
        }, indent=2))
        return 0
    print(f"# {cfg.source_path}: OK")
    print(yaml.safe_dump(masked_dump(cfg), sort_keys=False).rstrip())
    print("\n# context budget (frames / tokens)")
    for name, value in budget.rows():
        print(f"  {name:<38} {value:>6}")
    print(f"\n# estimated GPU memory at context {cfg.runtime.context_window} "
          f"(PersonaPlex 7B, dep_q 8, Mimi included"
          f"{f'; {slots} conversations' if slots > 1 else ''})")
    auto = cfg.runtime.quantization == "auto"
    for q, est in vram.items():
        mark = "  <- selected" if q == cfg.runtime.quantization else ""
        if auto and q == "int4":  # the real pick needs the GPU: it is logged at load
            mark = "  <- selected by auto where the GPU runs it (else none, then int8)"
        print(f"  {q:<5} {est['total_gb']:>5.1f} GB  (weights {est['weights_gb']:.1f}, "
              f"KV {est['kv_cache_gb']:.2f}){mark}")
    asr = asr_summary(cfg.asr)
    print("\n# user speech recognition")
    if asr["backend"] == "none":
        print("  none: user turns are \"[user spoke N s]\" markers")
    else:
        mb = asr["memory_mb"]
        print(f"  {asr['backend']} {asr['model']} on {asr['device']} {asr['compute_type']}, "
              f"about {f'{mb} MB' if mb is not None else '? MB (unknown size)'}"
              f"{' (GPU memory)' if asr['device'] == 'cuda' else ''}")
    return 0


def asr_summary(cfg: AsrSection) -> dict[str, object]:
    """What the recogniser will load, without loading it (device probe only)."""
    from entropi.hearing.asr import memory_estimate_mb, resolve_device

    if cfg.backend == "none":
        return {"backend": "none"}
    if cfg.backend == "kyutai":
        from entropi.hearing.kyutai import summary

        return summary(cfg)
    device, compute = resolve_device(cfg)
    return {"backend": cfg.backend, "model": cfg.model, "device": device,
            "compute_type": compute, "memory_mb": memory_estimate_mb(cfg)}
