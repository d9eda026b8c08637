"""Fixtures for the secondary-LLM tests: a real llama.cpp server (SmolLM2-135M, 1 thread),
a misbehaving OpenAI/OpenRouter server, the tiny PersonaPlex-style tokenizer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from entropi.config import Config, EmbeddedLLM, parse_config
from entropi.llm.embedded import EmbeddedServer
from entropi.text.tokenizer import TextTokenizer, train_tiny_tokenizer
from tests.llm.fake_openai import FakeOpenAI

BUDGET = 160  # tiny tokenizer (byte fallback): the default persona alone is 51 wrapped tokens
API_KEY = "sk-or-test-5ecret-key"


@pytest.fixture(autouse=True)
def _default_structlog() -> None:
    """CLI tests configure logging at 'warning', which filters info events before
    ``capture_logs`` sees them; every test here starts from structlog's defaults."""
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> TextTokenizer:
    return TextTokenizer(train_tiny_tokenizer(tmp_path_factory.mktemp("tok") / "tok.model"))


@pytest.fixture(scope="session")
async def llama_server() -> AsyncIterator[EmbeddedServer]:
    server = EmbeddedServer(EmbeddedLLM(hf_repo=None, hf_file=None, threads=1, ctx_size=2048))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    yield server
    await server.stop()


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., Config]:
    """A Config from YAML-shaped overrides, parsed like a real file (secrets via ${VAR})."""

    def build(**sections: dict[str, Any]) -> Config:
        data = _merge({"conversation": {"prompt_token_budget": BUDGET},
                       # SmolLM2 (bundled), not config.yaml's Qwen: no hub in tests
                       "secondary_model": {"temperature": 0.0,
                                           "embedded": {"hf_repo": None, "hf_file": None}}},
                      sections)
        return parse_config(yaml.safe_dump(data), source="test.yaml", base_dir=tmp_path,
                            env={"OPENROUTER_API_KEY": API_KEY})

    return build
