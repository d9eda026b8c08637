"""Continuity: do facts and promises said early reach the prompts of later windows?

Plays scripted multi-window conversations (``--script FILE``, default every shipped
``entropi/data/continuity*.txt``: per script and the mean) through the real compactor, ledger,
memory service and retrieval, driven the way the controller drives them: recall → compact
(deadline: the longest thinking clip + 1 s) → submit to memory; late answers may land during
the next window's ``window.min_seconds``.
Modes: ``agent_words`` (user turns are markers, as the daemon hears them without ASR),
``user_words`` (user turns carry their words, as the user-speech transcription provides) and,
with ``--audio``, ``audio``: the user lines spoken by espeak-ng and played through the real
daemon (:mod:`entropi.bench.continuity.audio`).

Script format: ``=== window`` starts a window; ``user (Name): text`` / ``user: text`` /
``agent: text`` lines are utterances; ``!fact WORDS`` / ``!commitment WORDS`` plant an item
in that window. A planted item is recalled at +k when every word of WORDS appears
(case-insensitive, whole words) in the prompt made at the end of window w+k.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from entropi.core.errors import InputError, UsageError

HELP = ("continuity over a scripted conversation: fact/commitment recall at +5/+10/+20 "
        "windows, persona and budget kept, fallbacks, rejected LLM outputs, profile junk")
_LINE = re.compile(r"^(user|agent)\s*(?:\(([^)]+)\))?\s*:\s*(.+)$", re.IGNORECASE)
_PLANT = re.compile(r"^!(fact|commitment)\s+(.+)$", re.IGNORECASE)
WORDS_PER_SECOND = 2.5  # speech rate for the markers of agent-words mode


@dataclass
class Window:
    lines: list[tuple[str, str | None, str]] = field(default_factory=list)
    plants: list[tuple[str, list[str]]] = field(default_factory=list)


def parse_script(text: str, source: str) -> list[Window]:
    windows: list[Window] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("==="):
            windows.append(Window())
            continue
        if not windows:
            raise InputError(f"{source} line {n}: text before the first '=== window' line")
        if m := _PLANT.match(line):
            windows[-1].plants.append((m.group(1).lower(), m.group(2).lower().split()))
        elif m := _LINE.match(line):
            windows[-1].lines.append((m.group(1).lower(), m.group(2), m.group(3).strip()))
        else:
            raise InputError(f"{source} line {n}: expected 'user: …', 'agent: …', "
                             f"'!fact WORDS' or '!commitment WORDS', got {line[:40]!r}")
    if not windows:
        raise InputError(f"{source}: no '=== window' line; see the format in "
                         "entropi/data/continuity.txt")
    return windows


def utterances(window: Window, user_words: bool) -> list[Any]:
    from entropi.text.utterance import Utterance

    out = []
    for speaker, name, text in window.lines:
        if speaker == "agent":
            out.append(Utterance("agent", text))
        elif user_words:
            out.append(Utterance("user", text, name=name))
        else:
            out.append(Utterance("user", "", len(text.split()) / WORDS_PER_SECOND, name=name))
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", metavar="PATH", default=None,
                   help="config to take conversation/secondary_model settings from "
                        "(default: built-in defaults, tiny tokenizer, embedded SmolLM2)")
    p.add_argument("--script", metavar="FILE", default=None,
                   help="conversation script (default: the shipped 40-window script)")
    p.add_argument("--offline", action="store_true",
                   help="no LLM: the extractive path and the ledger only")
    p.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default 1)")
    p.add_argument("--budget", type=int, default=None,
                   help="override conversation.prompt_token_budget (tokens)")
    p.add_argument("--audio", action="store_true",
                   help="also speak the user lines (espeak-ng) and play them through the real "
                        "daemon (default config: ./config.demo.yaml); minutes per script")
    p.add_argument("--asr-model", metavar="M", default=None,
                   help="with --audio: faster-whisper with model M (a size, hub repo or local "
                        "CTranslate2 directory) instead of the config's asr section")


def _recalled(words: list[str], prompt: str) -> bool:
    have = set(re.findall(r"[a-z0-9']+", prompt.lower()))
    return all(w.strip(".,!?") in have for w in words)


def junk_pct(texts: list[str], windows: list[Window],
             holds: Callable[[list[str], str], bool] = _recalled) -> float | None:
    """Share of ledger items that hold no planted item's words (small talk, garble)."""
    plants = [words for win in windows for _, words in win.plants]
    if not texts:
        return None
    return round(100 * sum(not any(holds(p, t) for p in plants) for t in texts)
                 / len(texts), 1)


def score(windows: list[Window], prompts: list[str]) -> dict[str, Any]:
    n = len(prompts)
    out: dict[str, Any] = {}
    for k in (5, 10, 20):
        hits = [_recalled(words, prompts[w + k]) for w, win in enumerate(windows)
                for kind, words in win.plants if kind == "fact" and w + k < n]
        out[f"fact_recall_pct_{k}"] = round(100 * sum(hits) / len(hits), 1) if hits else None
    hits = [_recalled(words, prompts[min(w + 20, n - 1)]) for w, win in enumerate(windows)
            for kind, words in win.plants if kind == "commitment"]
    out["commitment_recall_pct"] = round(100 * sum(hits) / len(hits), 1) if hits else None
    return out


async def play(cfg: Any, windows: list[Window], user_words: bool, client: Any,
               count: Any, tmp: Path) -> dict[str, Any]:
    from entropi.compaction.budget import wrap
    from entropi.compaction.compactor import Compactor
    from entropi.memory.doctor import profile_junk_count
    from entropi.memory.ledger import LedgerStore, ledger_path, store_for
    from entropi.memory.record import WindowRecord
    from entropi.memory.service import MemoryService

    memory_cfg = cfg.memory.model_copy(update={
        "enabled": True, "journal_dir": tmp / "journal", "profile_path": tmp / "profile.json",
        "encryption_key_env": None})
    memory = MemoryService(memory_cfg, cfg.conversation.persona_name)
    await memory.start()
    t0 = datetime(2026, 11, 26, 9, tzinfo=UTC)  # a Thursday; windows are 3 minutes apart
    clock = {"now": t0}
    compactor = Compactor(client, cfg, count, ledger_store=store_for(memory_cfg),
                          clock=lambda: clock["now"])
    persona = compactor.persona
    prompts, fallbacks = [], 0
    try:
        for i, window in enumerate(windows):
            clock["now"] = t0 + timedelta(minutes=3 * (i + 1))
            talk = utterances(window, user_words)
            memories = await memory.recall(compactor.recall_query(talk))
            result = await compactor.compact(talk, memories)
            fallbacks += result.fallback is not None
            prompts.append(result.prompt)
            memory.submit(WindowRecord(i + 1, clock["now"] - timedelta(minutes=3),
                                       clock["now"], "\n".join(u.render() for u in talk),
                                       result.prompt, result.memory))
            await memory.flush()
            # The next window lasts at least min_seconds: a late answer lands meanwhile
            # (back to back, a slow model's requests would only queue up).
            await compactor.drain(timeout_s=cfg.window.min_seconds)
        await compactor.aclose()
    finally:
        await memory.stop()
    budget = cfg.conversation.prompt_token_budget
    rejected = sum(v for k, v in compactor.counts.items() if k.startswith("rejected:"))
    return {
        "windows": len(prompts),
        "persona_kept_pct": round(100 * sum(p.startswith(persona) for p in prompts)
                                  / len(prompts), 1),
        "budget_kept_pct": round(100 * sum(count(wrap(p)) <= budget for p in prompts)
                                 / len(prompts), 1),
        **score(windows, prompts),
        "fallback_rate": round(fallbacks / len(prompts), 3),
        "rejected_outputs": rejected,
        "profile_junk_entries": profile_junk_count(memory.profile,
                                                   cfg.conversation.persona_name),
        "journal_entries": memory.stats()["entries_written"],
        "distinct_prompts": len(set(prompts)),
        "ledger_junk_pct": junk_pct([i.text for i in LedgerStore(
            ledger_path(memory_cfg.profile_path)).load().items], windows),
    }


def _load(args: argparse.Namespace) -> dict[str, list[Window]]:
    """Script name → windows: the one given, or every shipped script."""
    if args.script:
        path = Path(args.script)
        try:
            return {path.stem: parse_script(path.read_text(encoding="utf-8"), str(path))}
        except OSError as exc:
            raise InputError(f"{path}: cannot read the script ({exc.strerror})") from None
    data = resources.files("entropi").joinpath("data")
    return {f.name.removesuffix(".txt"): parse_script(f.read_text("utf-8"),
                                                      f"entropi/data/{f.name}")
            for f in sorted(data.iterdir(), key=lambda f: f.name)
            if f.name.startswith("continuity") and f.name.endswith(".txt")}


def mean(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Key by key: the mean of the numbers (None where no script had one); nested modes too."""
    out: dict[str, Any] = {}
    for key in results[0]:
        values = [r.get(key) for r in results]
        if isinstance(values[0], dict):
            out[key] = mean(values)
            continue
        nums = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        out[key] = round(sum(nums) / len(nums), 1) if nums else values[0]
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from entropi.bench.compaction import bench_config
    from entropi.llm.tokens import resolve_tokenizer

    scripts = _load(args)
    audio_cfg = _audio_config(args) if args.audio else None  # bad config: said before any run
    with tempfile.TemporaryDirectory(prefix="entropi-bench-") as tmp:
        cfg = bench_config(args.config, Path(tmp))
        if args.budget:
            cfg = _with_budget(cfg, args.budget)
        count = resolve_tokenizer(cfg).count
        per = {}
        for name, windows in scripts.items():
            per[name] = asyncio.run(_run(cfg, windows, args, count, Path(tmp) / name))
            if audio_cfg is not None:
                per[name] = _with_audio(per[name], audio_cfg, args.asr_model, windows,
                                        Path(tmp) / name / "audio")
    if len(per) == 1:
        return next(iter(per.values()))
    return {**mean(list(per.values())), "scripts": per}


def _with_budget(cfg: Any, budget: int) -> Any:
    return cfg.model_copy(update={"conversation": cfg.conversation.model_copy(
        update={"prompt_token_budget": budget})})


def _audio_config(args: argparse.Namespace) -> Any:
    """The daemon's config for ``--audio`` (default ./config.demo.yaml); it must hear words."""
    from entropi.config import load_config

    cfg = load_config(args.config or "config.demo.yaml", check=False)
    if args.asr_model is None and cfg.asr.backend == "none":
        raise UsageError("bench continuity --audio: asr.backend is none in the config, so "
                         "nothing can be heard; set asr.backend or pass --asr-model M")
    return _with_budget(cfg, args.budget) if args.budget else cfg


def _with_audio(result: dict[str, Any], cfg: Any, asr_model: str | None,
                windows: list[Window], tmp: Path) -> dict[str, Any]:
    """The audio mode beside the word modes; its hearing figures at the top level."""
    from entropi.bench.continuity.audio import play_audio

    audio = play_audio(cfg, windows, tmp, asr_model)
    top = {k: audio[k] for k in ("speech_heard_pct", "words_lost", "wer", "items_planted",
                                 "items_heard", "heard_recall_pct_10", "heard_recall_pct_20")}
    return {**result, **top, "mode_audio": audio}


async def _run(cfg: Any, windows: list[Window], args: argparse.Namespace, count: Any,
               tmp: Path) -> dict[str, Any]:
    from entropi.llm.client import ChatClient
    from entropi.llm.embedded import EmbeddedServer

    server = None
    client = None
    sm = cfg.secondary_model
    model = "offline"
    if not args.offline:
        if sm.backend == "embedded":
            server = EmbeddedServer(sm.embedded.model_copy(update={"threads": args.threads}))
            await server.start()
            sm = sm.model_copy(update={"backend": "openai", "base_url": server.base_url,
                                       "context_tokens": sm.context_tokens
                                       or sm.embedded.ctx_size})
            cfg = cfg.model_copy(update={"secondary_model": sm})
            model = server.gguf.name
        else:
            model = sm.model
        client = ChatClient(sm, backend_name="embedded" if server else None)
    modes = {}
    try:
        for mode in ("agent_words", "user_words"):
            modes[mode] = await play(cfg, windows, mode == "user_words", client, count,
                                     tmp / mode)
    finally:
        if client is not None:
            await client.aclose()
        if server is not None:
            await server.stop()
    # The goal mode's figures at the top level; both modes in full below.
    return {"model": model, **modes["user_words"], "mode_agent_words": modes["agent_words"],
            "mode_user_words": modes["user_words"]}
