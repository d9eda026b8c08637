"""``entropi bench asr``: how well and how fast the user is heard.

Plays a set of espeak-ng sentences (rendered here; or ``--data DIR`` with WAV + .txt pairs)
through the real path at real-time pace: the voice-activity model segments user turns,
the transcript hands each finished turn to the recogniser's worker thread. Reports word
error rate, real-time factor, turn latency (from the end of the user's speech to the words
being ready: the 0.4 s end-of-turn silence, the VAD's lag and recognition) and the VAD's
frame accuracy on the same speech clean, in pink noise at -38 / -30 dBFS and at -48 dBFS.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from entropi.core.percentiles import percentile

HELP = "user speech: WER, real-time factor, turn latency, VAD frame accuracy"

SENTENCES = [
    "My cat is called Pepper.",
    "My sister Maria visits on Sunday.",
    "Please remind me to call my dad tomorrow evening.",
    "I started a new job at the library last week.",
    "The garden needs water before the weekend.",
    "We are going to the mountains in July.",
    "My favourite food is lemon cake.",
    "I met an old friend called Thomas at the station.",
]
GAP_SECONDS = 1.2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default="config.yaml", metavar="PATH",
                   help="its asr section is used (default config.yaml)")
    p.add_argument("--model", help="override asr.model (size, hub repo or local directory)")
    p.add_argument("--threads", type=int, help="override asr.threads")
    p.add_argument("--data", type=Path, metavar="DIR",
                   help="WAV files with a .txt transcript of the same name")
    p.add_argument("--vad", choices=["silero", "energy"], help="override window.vad")
    p.add_argument("--fast", action="store_true",
                   help="feed frames as fast as possible (latency then includes queueing)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from entropi.config import load_config

    cfg = load_config(args.config)
    asr = cfg.asr.model_copy(update={"backend": "faster-whisper"} | (
        {"model": args.model} if args.model else {}) | (
        {"threads": args.threads} if args.threads else {}))
    window = cfg.window.model_copy(update={"vad": args.vad} if args.vad else {})
    items = _load(args.data) if args.data else _render()
    return asyncio.run(_measure(asr, window, items, not args.fast)) | {
        "model": asr.model, "vad": window.vad}


def _render() -> list[tuple[np.ndarray, str]]:
    from entropi.audio.signals import espeak

    return [(espeak(s), s) for s in SENTENCES]


def _load(folder: Path) -> list[tuple[np.ndarray, str]]:
    from entropi.audio.wav import read_wav
    from entropi.core.errors import InputError

    pairs = [(w, w.with_suffix(".txt")) for w in sorted(folder.glob("*.wav"))]
    pairs = [(w, t) for w, t in pairs if t.is_file()]
    if not pairs:
        raise InputError(f"--data {folder}: no WAV files with a .txt transcript beside them")
    return [(read_wav(w), t.read_text(encoding="utf-8").strip()) for w, t in pairs]


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()


def word_errors(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance over words (substitutions + deletions + insertions)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


async def _measure(asr_cfg, window_cfg, items, realtime: bool) -> dict[str, Any]:
    from entropi.conversation.transcript import WindowTranscript
    from entropi.core.constants import FRAME_SECONDS, FRAME_SIZE, SAMPLE_RATE
    from entropi.hearing.asr import open_transcriber
    from entropi.hearing.turns import TurnTranscriber, settle
    from entropi.hearing.vad import open_vad

    gap = np.zeros(round(GAP_SECONDS * SAMPLE_RATE), np.float32)
    pcm = np.concatenate([gap] + [x for clip, _ in items for x in (clip, gap)])
    ends, pos = [], gap.size  # where each utterance's audio ends (seconds)
    for clip, _ in items:
        pos += clip.size
        ends.append(pos / SAMPLE_RATE)
        pos += gap.size

    turns = TurnTranscriber(open_transcriber(asr_cfg), turn_timeout_s=120.0)
    submitted: list[tuple[float, Any]] = []  # (audio time at submit, future)
    done_at: dict[int, float] = {}
    submit = turns.submit

    def timed_submit(audio: np.ndarray):
        fut = submit(audio)
        key = len(submitted)
        fut.add_done_callback(lambda _f: done_at.__setitem__(key, time.perf_counter()))
        submitted.append((clock, fut))
        return fut

    turns.submit = timed_submit  # type: ignore[method-assign]
    vad = open_vad(window_cfg)
    transcript = WindowTranscript(turns)
    t0 = time.perf_counter()
    clock = 0.0
    for k in range(pcm.size // FRAME_SIZE):
        clock = (k + 1) * FRAME_SECONDS
        if realtime:
            await asyncio.sleep(max(0.0, t0 + clock - time.perf_counter()))
        frame = pcm[k * FRAME_SIZE:(k + 1) * FRAME_SIZE]
        transcript.add(None, user_pcm=frame, t=clock, user_active=await vad.step(frame))
    await settle(transcript.close(), 120.0)
    vad.close()
    turns.close()

    # Each turn belongs to the utterance that ended last before it was submitted.
    hyps: list[list[str]] = [[] for _ in items]
    latencies = []
    for key, (at, fut) in enumerate(submitted):
        idx = max((i for i, e in enumerate(ends) if e <= at), default=None)
        if idx is None:
            continue
        hyps[idx] += words(fut.result() or "")
        if key in done_at:
            latencies.append((done_at[key] - t0 - ends[idx]) * 1e3)
    refs = [words(text) for _, text in items]
    errors = sum(word_errors(r, h) for r, h in zip(refs, hyps, strict=True))
    audio_s = sum(clip.size for clip, _ in items) / SAMPLE_RATE
    recog_s = sum(turns.busy_ms) / 1e3
    return {
        "utterances": len(items),
        "turns": len(submitted),
        "wer": round(errors / max(1, sum(len(r) for r in refs)), 4),
        "rtf": round(recog_s / audio_s, 4),
        "turn_latency_ms_p50": percentile(latencies, 50),
        "turn_latency_ms_p99": percentile(latencies, 99),
        # The recogniser's own share of the latency (the rest: 0.4 s end-of-turn silence,
        # the VAD's lag, queueing behind the previous turn).
        "recognition_ms_p50": percentile(turns.busy_ms, 50),
        "recognition_ms_p99": percentile(turns.busy_ms, 99),
        "asr_failures": turns.failures,
    } | await _vad_accuracy(items, window_cfg)


async def _vad_accuracy(items, window_cfg) -> dict[str, float]:
    """Frame accuracy against labels from the clean speech, in four conditions."""
    from entropi.audio.signals import at_level, pink_noise, speech_frames
    from entropi.core.constants import FRAME_SIZE, SAMPLE_RATE
    from entropi.hearing.vad import open_vad

    gap = np.zeros(SAMPLE_RATE // 2, np.float32)
    clean = at_level(np.concatenate([x for clip, _ in items for x in (gap, clip)] + [gap]), -20.0)
    labels = speech_frames(clean)
    scenes = {"vad_frame_accuracy": clean,
              "vad_frame_accuracy_noise_38": clean + pink_noise(clean.size, -38.0, 1),
              "vad_frame_accuracy_noise_30": clean + pink_noise(clean.size, -30.0, 1),
              "vad_frame_accuracy_quiet_48": at_level(clean, -48.0)}
    out = {}
    for key, pcm in scenes.items():
        vad = open_vad(window_cfg)
        frames = [pcm[k * FRAME_SIZE:(k + 1) * FRAME_SIZE] for k in range(labels.size)]
        frames += [np.zeros(FRAME_SIZE, np.float32)] * vad.lag  # flush the lag
        decided = [await vad.step(f) for f in frames][vad.lag:]
        vad.close()
        out[key] = round(float(np.mean(np.array(decided) == labels)), 4)
    return out
