"""``entropi run``: the daemon."""

from __future__ import annotations

import argparse
from pathlib import Path

from entropi.commands import add_config_option, load_for_command
from entropi.core.errors import UsageError


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", parents=parents, help="run the voice daemon",
                       description="Hold a full-duplex conversation until stopped (SIGTERM/SIGINT)"
                                   ", the input WAV ends, or --max-windows windows are done.")
    add_config_option(p)
    p.add_argument("--input", type=Path, metavar="WAV",
                   help="read the user's audio from a WAV file instead of audio.input")
    p.add_argument("--output", type=Path, metavar="WAV",
                   help="write the agent's audio to a WAV file instead of audio.output")
    p.add_argument("--fast", action="store_true",
                   help="with --input: run as fast as possible instead of real time")
    p.add_argument("--max-windows", type=int, metavar="N",
                   help="stop cleanly after N windows")
    p.add_argument("--summary-json", type=Path, metavar="PATH",
                   help="write the run summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.max_windows is not None and args.max_windows < 1:
        raise UsageError(f"--max-windows: {args.max_windows} must be at least 1")
    if args.fast and args.input is None:
        raise UsageError("--fast needs --input WAV (a microphone cannot run faster)")
    cfg = load_for_command(args)
    audio = {}
    # Absolute but not resolve()d: a symlink loop is for preflight to name, not to crash on.
    if args.input is not None:
        if not args.input.exists() and not args.input.is_symlink():
            raise UsageError(f"--input: {args.input}: no such file")
        audio |= {"input": "wav", "input_wav": args.input.absolute(), "fast": args.fast}
    if args.output is not None:
        audio |= {"output": "wav", "output_wav": args.output.absolute()}
    if audio:
        cfg = cfg.model_copy(update={"audio": cfg.audio.model_copy(update=audio)})
    from entropi.service.preflight import preflight

    preflight(cfg, args.summary_json)  # same checks as check-config, before any model loads
    from entropi.engine.presets import caller_voice_folders, with_hub_preset

    user_voices = cfg.voice.prompt_dir
    cfg = with_hub_preset(cfg)  # NATF0.pt & co. from the hub's voices.tgz, before the model
    voice_dirs = None
    if cfg.audio.input == "websocket":  # the token was checked by preflight
        voice_dirs = caller_voice_folders(user_voices, cfg)  # the 18 presets beside the user's
    from entropi.service.daemon import RunOptions, run_daemon

    return run_daemon(cfg, RunOptions(max_windows=args.max_windows,
                                      summary_json=args.summary_json, voice_dirs=voice_dirs))
