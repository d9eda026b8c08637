"""Memory: fsync'd journal appends per second, retrieval latency over N entries, cold load.

Synthetic entries (Zipf-distributed words, seeded) in a temporary directory; nothing of
the user's journal is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

HELP = "journal appends/s (fsync'd) and retrieval latency at N entries (goal < 50 ms)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--entries", type=int, default=10_000,
                        help="entries in the retrieval index (default 10000)")
    parser.add_argument("--appends", type=int, default=300,
                        help="fsync'd appends to time (default 300)")
    parser.add_argument("--queries", type=int, default=300,
                        help="retrieval queries to time (default 300)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="directory on the disk to measure (default: a temp dir)")


def _corpus(n: int, seed: int = 7):
    from entropi.memory.entry import JournalEntry

    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(3000)] + ["jazz", "doctor", "trip", "sister", "garden",
                                              "painting", "deadline", "birthday", "piano"]
    weights = [1 / (i + 1) for i in range(len(vocab))]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        ts = start + timedelta(minutes=7 * i)
        words = rng.choices(vocab, weights, k=rng.randint(12, 40))
        yield JournalEntry(id=f"{ts:%Y%m%dT%H%M%S%f}-{i:06x}", timestamp=ts, persona="Ada",
                           window=i, summary=" ".join(words), emotion="calm",
                           importance=round(rng.random(), 2),
                           tags=(rng.choice(["planning", "music", "family"]), "emotion:calm"),
                           commitments=(" ".join(rng.choices(vocab, weights, k=6)),)
                           if rng.random() < 0.2 else ())


async def _pipeline(root: Path, n: int) -> float:
    """Windows through MemoryService (validate, heuristics, append+fsync, index) per second."""
    from entropi.config import MemorySection
    from entropi.memory.record import WindowRecord
    from entropi.memory.service import MemoryService

    cfg = MemorySection(journal_dir=root / "journal", profile_path=root / "persona_state.json",
                        importance_threshold=0.0, cooldown_seconds=0, queue_size=n + 1)
    mem = MemoryService(cfg, persona_name="Ada")
    await mem.start()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    text = ("I'm nervous about the doctor appointment tomorrow, I'll call my sister on "
            "Sunday to plan the trip. ") * 4
    t0 = time.perf_counter()
    for i in range(n):
        mem.submit(WindowRecord(i, start, start + timedelta(seconds=20 * i), text, "p", None))
        await asyncio.sleep(0)  # the daemon yields between windows too
    await mem.stop()
    return time.perf_counter() - t0


def _ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run(args: argparse.Namespace) -> dict:
    from entropi.core.files import ensure_private_dir, write_private
    from entropi.memory.journal import Journal
    from entropi.memory.retrieval import BM25Index

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        # 1. fsync'd appends through the real Journal (lock + O_APPEND + fsync)
        journal = Journal(root / "appends")
        entries = list(_corpus(args.appends, seed=1))
        t0 = time.perf_counter()
        for entry in entries:
            journal.append(entry)
        append_s = time.perf_counter() - t0

        # 2. N entries on disk (written in bulk, one file per day), then a cold load
        corpus = list(_corpus(args.entries))
        by_day = defaultdict(list)
        for entry in corpus:
            by_day[entry.timestamp.date()].append(entry)
        big = Journal(root / "big")
        for day, items in by_day.items():
            path = big.day_path(items[0].timestamp)
            ensure_private_dir(path.parent)
            write_private(path, (f"# Journal {day}\n\n" +
                                "".join(e.to_markdown() for e in items)).encode())
        t0 = time.perf_counter()
        loaded = big.read_all()
        index = BM25Index()
        for entry in loaded:
            index.add(entry)
        load_s = time.perf_counter() - t0

        # 3. retrieval: queries of 3-8 words from the same distribution
        rng = random.Random(3)
        queries = [" ".join(e.summary.split()[: rng.randint(3, 8)]) + " jazz doctor"
                   for e in rng.sample(corpus, min(args.queries, len(corpus)))]
        now = corpus[-1].timestamp
        samples = []
        for q in queries:
            t0 = time.perf_counter()
            index.search(q, 5, now=now)
            samples.append(time.perf_counter() - t0)
        # 4. the daemon's pattern: one new entry, then a query (index caches rebuilt)
        fresh = list(_corpus(min(100, len(queries)), seed=5))
        after_add = []
        for entry, q in zip(fresh, queries, strict=False):
            index.add(replace(entry, id=entry.id + "-new"))
            t0 = time.perf_counter()
            index.search(q, 5, now=now)
            after_add.append(time.perf_counter() - t0)
        pipeline_s = asyncio.run(_pipeline(root / "service", args.appends))
    return {
        "entries": len(loaded),
        "appends": args.appends,
        "appends_per_s": args.appends / append_s,
        "append_ms_mean": append_s / args.appends * 1000,
        "retrieval_ms_p50": _ms(samples, 0.5),
        "retrieval_ms_p99": _ms(samples, 0.99),
        "retrieval_ms_mean": statistics.fmean(samples) * 1000,
        "retrieval_after_add_ms_p50": _ms(after_add, 0.5),
        "retrieval_after_add_ms_p99": _ms(after_add, 0.99),
        "load_index_s": load_s,
        "service_windows_per_s": args.appends / pipeline_s,
        "goal_retrieval_ms": 50.0,
    }
