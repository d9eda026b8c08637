"""The built-in defaults are config.yaml's: a key left out of a config means what the
annotated example says, key by key (BENCHMARKS: a 150-token budget cannot hold the ledger)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from entropi.config import Config
from tests.service.conftest import ROOT


def _leaves(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out |= _leaves(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def _same(schema: Any, example: Any) -> bool:
    if isinstance(example, str) and example.startswith(("./", "~")):  # a path, as written
        return schema is not None and Path(example).expanduser() == Path(schema)
    return schema == example


def test_schema_defaults_equal_config_yaml_key_by_key():
    example = _leaves(yaml.safe_load((ROOT / "config.yaml").read_text()))
    schema = _leaves(Config().model_dump(mode="json"))
    assert set(example) <= set(schema), set(example) - set(schema)  # no unknown key
    differ = {key: (schema[key], example[key]) for key in example
              if not _same(schema[key], example[key])}
    assert differ == {}, differ
    # A key config.yaml leaves out (commented out: a secret) defaults to nothing.
    assert {key: schema[key] for key in set(schema) - set(example)} == {
        "model.hf_token": None, "secondary_model.api_key": None}
    assert schema["conversation.prompt_token_budget"] == 300
