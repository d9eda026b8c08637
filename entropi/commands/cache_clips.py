"""``entropi cache-clips --config PATH [--voice NAME] [--force] [--json]``: have PersonaPlex
speak ``voice.thinking_lines`` in the configured voice and cache the clips.

The lines are checked against ``voice.max_clip_seconds`` first (tokenizer only, before the
model loads). An up-to-date cache (same voice bytes, checkpoint and render settings) is left
alone unless ``--force``. ``--json`` prints one object with the render cost (seconds per clip
and per take): the benchmark figure for this feature.
"""

from __future__ import annotations

import argparse
import json
import time

from entropi.commands import add_config_option, load_for_command


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("cache-clips", parents=parents,
                       help="render the thinking clips in the persona's own voice",
                       description="Render voice.thinking_lines with PersonaPlex in the "
                                   "configured voice (text forced, audio sampled) into the "
                                   "thinking-clip cache the daemon plays from.")
    add_config_option(p)
    p.add_argument("--voice", metavar="NAME", default=None,
                   help="voice file in voice.prompt_dir instead of voice.prompt_file")
    p.add_argument("--force", action="store_true", help="render even if the cache is current")
    p.add_argument("--json", action="store_true", help="print one JSON object (render cost)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_for_command(args)
    if args.voice:
        voice = cfg.voice.model_copy(update={"prompt_file": args.voice})
        cfg = cfg.model_copy(update={"voice": voice})
    from entropi.clips.cache import cache_folder, stale_reason
    from entropi.clips.lines import plan_lines
    from entropi.clips.render import cache_key, render_to_cache, terminal_progress
    from entropi.core.errors import InputError
    from entropi.engine.checkpoints import resolve_checkpoint
    from entropi.engine.engine import load_engine
    from entropi.engine.presets import with_hub_preset
    from entropi.text.tokenizer import TextTokenizer

    cfg = with_hub_preset(cfg)  # a PersonaPlex preset name: fetched from the hub's voices.tgz
    if not cfg.voice.prompt_path.is_file():
        raise InputError(f"{cfg.voice.prompt_path}: voice file not found; check --voice or "
                         f"voice.prompt_dir/prompt_file")
    ckpt = resolve_checkpoint(cfg)
    plan_lines(TextTokenizer(ckpt.tokenizer), cfg.voice)  # too-long lines fail before loading
    folder = cache_folder(cfg)
    reason = "--force" if args.force else stale_reason(folder, cache_key(cfg, ckpt))
    out: dict = {"folder": str(folder), "voice": cfg.voice.prompt_file,
                 "up_to_date": reason is None}
    if reason is None:
        _print(args, out, f"{folder}: up to date")
        return 0
    started = time.perf_counter()
    engine = load_engine(cfg)
    out |= {"reason": reason, "load_s": round(time.perf_counter() - started, 3),
            "device": engine.memory_stats()["device"]}
    stats = render_to_cache(engine, cfg, None if args.json else terminal_progress())
    out |= stats.as_dict()
    _print(args, out, f"{folder}: {stats.clips} clips ({stats.takes} takes) in "
                      f"{stats.seconds:.1f} s, {stats.seconds / stats.clips:.2f} s per clip")
    return 0


def _print(args: argparse.Namespace, out: dict, line: str) -> None:
    print(json.dumps(out) if args.json else line)
