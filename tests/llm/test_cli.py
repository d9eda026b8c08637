"""``entropi compact`` end to end (in-process CLI, real llama.cpp server, tiny tokenizer)."""

from __future__ import annotations

import json

import pytest
import yaml

from entropi.cli import main
from entropi.compaction.budget import wrap
from entropi.text.tokenizer import TextTokenizer

TRANSCRIPT = """user: I adopted a cat named Miso last week.
agent: Miso is a lovely name! How old is she?
[user spoke 1.5 s]
agent: Kittens love to play at night, so a few toys will help.
"""


def _write_config(tmp_path, **secondary) -> str:
    cfg = {"model": {"source": "tiny", "cache_dir": str(tmp_path / "cache")},
           "conversation": {"prompt_token_budget": 160},
           "secondary_model": {"temperature": 0.0, "memory_directive": False, **secondary},
           "logging": {"level": "warning"}}
    path = tmp_path / "entropi.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.mark.llm
def test_compact_json_output(tmp_path, capsys, llama_server) -> None:
    config = _write_config(tmp_path, backend="openai", base_url=llama_server.base_url)
    (tmp_path / "talk.txt").write_text(TRANSCRIPT)
    rc = main(["compact", "--config", config, "--transcript", str(tmp_path / "talk.txt"),
               "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert {"prompt", "tokens", "token_budget", "latency_ms", "backend", "fallback"} <= set(out)
    assert out["backend"] == "openai" and out["token_budget"] == 160
    # source: tiny → the tokenizer is trained where the engine's tiny checkpoint expects it
    tok = TextTokenizer(tmp_path / "cache" / "tiny" / "tokenizer.model")
    assert out["tokens"] == tok.count(wrap(out["prompt"])) <= 160
    assert out["prompt"].startswith("You are Ada")


def test_compact_text_output_offline_fallback_and_bad_transcript(tmp_path, capsys) -> None:
    # Nothing listens on port 9: the compaction still prints a valid (extractive) prompt.
    config = _write_config(tmp_path, backend="openai", base_url="http://127.0.0.1:9/v1")
    (tmp_path / "talk.txt").write_text(TRANSCRIPT)
    assert main(["compact", "-c", config, "--transcript", str(tmp_path / "talk.txt")]) == 0
    out = capsys.readouterr().out
    assert "The user said: I adopted a cat named Miso last week." in out  # the ledger
    assert "fallback unreachable" in out and "/ 160 (wrapped in <system> tags)" in out
    assert main(["compact", "-c", config, "--transcript", str(tmp_path / "none.txt")]) == 2
    assert "input error: " in capsys.readouterr().err
