"""``entropi bench engine``: per-frame time, LM step time, window restart cost, memory.

Restart cost compares the fork's way (reset, then one ``LMGen.step`` per prefix frame: voice
+ 6 silence + text prompt + 6 silence) with entropi's (restore the voice snapshot in place,
then a few batched passes over the text prompt). ``--random-weights full`` builds the real 7B
architecture with random weights (for GPUs without the gated files); ``tiny`` the test model.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import numpy as np

from entropi.core.percentiles import percentile

HELP = "PersonaPlex engine: frame and LM step p50/p99, restart (per-step vs fast), memory"

_TEXT = ("You are Ada, a warm and curious companion who listens closely and speaks briefly. "
         "The user talked about planning a trip to the mountains next week with a friend. "
         "Remember that her sister Maria likes jazz and lives in Lisbon near the river.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, metavar="PATH", help="YAML config file")
    p.add_argument("--random-weights", choices=["full", "tiny"], default=None,
                   help="random weights instead of the configured checkpoint: the full 7B "
                        "architecture (CUDA) or the tiny test model")
    p.add_argument("--frames", type=int, default=200, help="frames to time (default 200)")
    p.add_argument("--voice-seconds", type=float, default=10.0,
                   help="voice prompt length in seconds (random codes; default 10)")
    p.add_argument("--prompt-tokens", type=int, default=150,
                   help="system prompt length in tokens (default 150)")
    p.add_argument("--repeats", type=int, default=5, help="restarts timed per path (default 5)")
    p.add_argument("--batch", type=int, default=None, metavar="B",
                   help="instead: the batched engine at B = 1..B slots (tick p50/p99, state "
                        "memory, a neighbour's re-injection), and the largest real-time B")
    p.add_argument("--stock", action="store_true",
                   help="also time plain moshi the way its own server runs it, on the same "
                        "weights and input, and report stock/entropi ratios")


def _prompt(engine: Any, tokens: int) -> str:
    pool, words = _TEXT.split(), []
    while len(engine.prompt_ids(" ".join(words))) < tokens:
        words.append(pool[len(words) % len(pool)])
    return " ".join(words)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import time

    from entropi.config import load_config
    from entropi.engine.engine import Engine
    from entropi.engine.measure import time_steps
    from entropi.engine.model import load_models, load_random_full
    from entropi.engine.voice import VoicePrompt

    cfg = load_config(args.config, check=False)
    if args.random_weights == "tiny":
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"source": "tiny"})})
    started = time.perf_counter()
    models = load_random_full(cfg) if args.random_weights == "full" else load_models(cfg)
    load_s = time.perf_counter() - started
    rng = np.random.default_rng(0)
    voice = VoicePrompt(rng.integers(0, 2048, (8, round(args.voice_seconds * 12.5))))
    engine = Engine(models, cfg, voice)
    warm_ms = engine.warm_up()
    prompt = _prompt(engine, args.prompt_tokens)
    inputs = [(0.05 * rng.standard_normal(1920)).astype(np.float32) for _ in range(args.frames)]
    if args.batch:
        from entropi.engine.measure import time_batches

        return {"device": engine.memory_stats()["device"],
                "weights": args.random_weights or cfg.model.source,
                "dtype": str(models.dtype).removeprefix("torch."),
                "quantization": models.quantization, "context": cfg.runtime.context_window,
                "voice_frames": engine.voice_frames, "load_s": load_s,
                **time_batches(engine, prompt, inputs, args.batch)}

    full = [engine.prime_reference(prompt) for _ in range(max(1, args.repeats // 2))]
    fast = [engine.prime(prompt) for _ in range(args.repeats)]

    frame_ms, cpu_ms, step_ms = time_steps(engine, inputs, args.frames, prompt, rng)

    full_ms = statistics.median(s.ms for s in full)
    fast_ms = statistics.median(s.ms for s in fast)
    mem = engine.memory_stats()
    result = {
        "device": mem["device"],
        "weights": args.random_weights or cfg.model.source,
        "dtype": str(models.dtype).removeprefix("torch."),
        "quantization": models.quantization,
        "context": cfg.runtime.context_window,
        "voice_frames": engine.voice_frames,
        "prompt_tokens": fast[0].tokens,
        "frame_ms_p50": percentile(frame_ms, 50, 4), "frame_ms_p99": percentile(frame_ms, 99, 4),
        "frame_ms_max": max(frame_ms),
        "frame_cpu_ms_p50": percentile(cpu_ms, 50, 4),
        "frame_cpu_ms_p99": percentile(cpu_ms, 99, 4),
        "step_ms_p50": percentile(step_ms, 50, 4), "step_ms_p99": percentile(step_ms, 99, 4),
        "restart_full_steps": full[0].passes, "restart_full_ms": full_ms,
        "restart_fast_passes": fast[0].passes, "restart_fast_ms": fast_ms,
        "restart_speedup": full_ms / fast_ms,
        "weights_bytes": mem["weights_bytes"], "peak_bytes": mem["peak_bytes"],
        "snapshot_bytes": mem["snapshot_bytes"],
        "load_s": load_s, "warm_up_ms": warm_ms,
    }
    if args.stock:  # last: it releases the engine's streaming state
        result |= _stock(engine, inputs, frame_ms, full[0].passes, fast_ms, len(full))
    return result


def _stock(engine: Any, inputs: list[np.ndarray], frame_ms: list[float], prime_steps: int,
           fast_ms: float, repeats: int) -> dict[str, Any]:
    """Stock moshi on the same weights and input; ratios > 1 mean entropi is faster."""
    from entropi.engine.stock import stock_frame_ms

    stock, restarts = stock_frame_ms(engine, inputs, prime_steps, repeats)
    # Stock moshi has no re-injection: like the fork, it re-steps the whole prefix per window.
    restart = statistics.median(restarts)
    out = {"stock_frame_ms_p50": percentile(stock, 50, 4),
           "stock_frame_ms_p99": percentile(stock, 99, 4),
           "stock_frame_ms_max": max(stock), "stock_restart_steps": prime_steps,
           "stock_restart_ms": restart}
    out |= {"ratio_frame_p50": out["stock_frame_ms_p50"] / percentile(frame_ms, 50, 4),
            "ratio_frame_p99": out["stock_frame_ms_p99"] / percentile(frame_ms, 99, 4),
            "ratio_restart": restart / fast_ms}
    return out
