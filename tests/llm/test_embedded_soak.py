"""The embedded llama.cpp server keeps flat memory over many windows: each window sends a
new prompt, and llama.cpp's host-RAM prompt cache (on by default, up to 8 GiB) used to keep
every old one (+~20 MB per 450-token prompt, 929 → 1508 MB over 200 bench windows)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

WARMUP, MEASURED = 2, 6


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_rss_stays_flat_over_many_distinct_prompts(llama_server) -> None:
    rss = []
    async with httpx.AsyncClient(timeout=120, trust_env=False) as http:
        for i in range(WARMUP + MEASURED):
            # A new ~200-token prompt each time, as every window's compaction sends.
            words = " ".join(f"w{i}n{j}" for j in range(40))
            resp = await http.post(f"{llama_server.base_url}/chat/completions",
                                   json={"messages": [{"role": "user", "content": words}],
                                         "max_tokens": 1, "temperature": 0.0})
            assert resp.status_code == 200, resp.text
            rss.append(_rss_mb())
    growth = rss[-1] - rss[WARMUP - 1]
    # The cache kept ~40 KB per prompt token (~50 MB here); flat is within a few MB.
    assert growth < 10, rss
