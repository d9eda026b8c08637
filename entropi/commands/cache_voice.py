"""``entropi cache-voice VOICE.wav [...] -o DIR``: Mimi-encode voice prompts once.

Writes ``DIR/<name>.voice.pt`` per WAV (the codes PersonaPlex's prefix feeds, so a window
restart never re-encodes audio). Up-to-date outputs (same WAV bytes, same Mimi file) are
skipped. A bad file gets one error line and the others are still processed; the exit code
is non-zero if any failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from entropi.commands import add_config_option, load_for_command
from entropi.core.errors import EntropiError, UsageError


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("cache-voice", parents=parents,
                       help="encode voice-prompt WAVs to cached .voice.pt files",
                       description="Encode voice-prompt WAVs (resampled to 24 kHz, channel 0, "
                                   "-24 LUFS) with the configured Mimi codec into "
                                   "<name>.voice.pt files for voice.prompt_file.")
    p.add_argument("wavs", nargs="+", metavar="VOICE.wav", type=Path, help="voice recordings")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="DIR",
                   help="output directory (e.g. voices/)")
    p.add_argument("--force", action="store_true", help="re-encode even if up to date")
    add_config_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_for_command(args)
    if args.output.exists() and not args.output.is_dir():
        raise UsageError(f"{args.output}: -o must be a directory")
    from entropi.core.logs import get_logger
    from entropi.engine.checkpoints import resolve_checkpoint
    from entropi.engine.engine import voice_frame_limit
    from entropi.engine.model import load_mimi
    from entropi.engine.voice import (
        VOICE_SUFFIX,
        encode_pcm,
        file_sha256,
        read_voice_meta,
        read_voice_wav,
        save_voice,
    )

    log = get_logger("entropi.cache_voice")
    ckpt = resolve_checkpoint(cfg)
    mimi = None  # loaded on the first file that needs encoding
    mimi_id = f"{ckpt.mimi_weights.name}:{ckpt.mimi_weights.stat().st_size}"
    max_seconds = voice_frame_limit(cfg) * 1920 / 24000
    failed: list[EntropiError] = []
    for wav in args.wavs:
        out = args.output / (wav.name.rsplit(".", 1)[0] + VOICE_SUFFIX)
        try:
            meta = None if args.force or not wav.is_file() else read_voice_meta(out)
            if meta and meta.get("mimi") == mimi_id and meta.get(
                    "source_sha256") == file_sha256(wav):
                print(f"{out}: up to date")
                continue
            pcm = read_voice_wav(wav, max_seconds)
            if mimi is None:
                mimi = load_mimi(ckpt, "cpu")
            codes = encode_pcm(mimi, pcm)
            save_voice(out, codes, wav, mimi_id)
            log.info("voice_cached", source=str(wav), output=str(out), frames=codes.shape[1])
            print(f"{out}: {codes.shape[1]} frames ({codes.shape[1] / 12.5:.2f} s)")
        except EntropiError as err:
            print(err.line(), file=sys.stderr)
            failed.append(err)
    if failed:
        print(f"cache-voice: {len(failed)} of {len(args.wavs)} file(s) failed", file=sys.stderr)
        return failed[0].exit_code
    return 0
