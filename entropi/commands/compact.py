"""``entropi compact``: run one compaction offline, to tune prompts and budgets."""

from __future__ import annotations

import argparse
import asyncio
import json

from entropi.commands import add_config_option, load_for_command


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("compact", parents=parents,
                       help="compact a transcript into the next system prompt (one run)",
                       description="Run one compaction with the configured secondary LLM and "
                                   "print the prompt, its token count and the latency.")
    add_config_option(p)
    p.add_argument("--transcript", required=True, metavar="FILE",
                   help="text file, one utterance per line, optionally 'user:'/'agent:' "
                        "prefixed; '[user spoke 2.5 s]' marks an untranscribed user turn")
    p.add_argument("--memories", default="", metavar="TEXT",
                   help="retrieved memories to merge in (default: none)")
    p.add_argument("--previous-prompt", default="", metavar="TEXT",
                   help="the previous window's prompt, whose summary is rolled forward")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from entropi.compaction.compactor import Compactor
    from entropi.llm.session import open_llm
    from entropi.llm.tokens import resolve_tokenizer
    from entropi.text.utterance import load_transcript

    # The context-budget check concerns the speech model, not this command.
    cfg = load_for_command(args, check=False)
    transcript = load_transcript(args.transcript)
    tokenizer = resolve_tokenizer(cfg)

    async def once():
        async with open_llm(cfg.secondary_model) as client:
            compactor = Compactor(client, cfg, count_tokens=tokenizer.count)
            try:
                return await compactor.compact(transcript, args.memories,
                                               args.previous_prompt)
            finally:
                await compactor.aclose()

    result = asyncio.run(once())
    if args.json:
        print(json.dumps(result.__dict__))
        return 0
    print(result.prompt)
    print()
    print(f"# tokens {result.tokens} / {result.token_budget} (wrapped in <system> tags), "
          f"latency {result.latency_ms:.0f} ms, backend {result.backend}, "
          f"fallback {result.fallback or 'none'}")
    if result.memory is not None:
        print(f"# memory directive {json.dumps(result.memory)}")
    return 0
