"""``runtime.quantization: auto`` is the default and says what it picked and why."""

from __future__ import annotations

import structlog
import torch

from entropi.config import parse_config
from entropi.engine.quant import choose_quantization, resolve_and_log


def test_auto_is_the_default_and_means_none_on_cpu(tmp_path) -> None:
    cfg = parse_config("{}", source="t.yaml", base_dir=tmp_path, env={})
    assert cfg.runtime.quantization == "auto"
    with structlog.testing.capture_logs() as logs:
        assert resolve_and_log(cfg, None, torch.device("cpu")) == "none"
    (event,) = [e for e in logs if e["event"] == "quantization"]
    assert event["configured"] == "auto" and "CPU" in event["why"]


def test_an_explicit_choice_is_kept(tmp_path) -> None:
    cfg = parse_config("runtime:\n  quantization: int8\n", source="t.yaml", base_dir=tmp_path,
                       env={})
    assert choose_quantization(cfg, None, torch.device("cpu")) == (
        "int8", "set in runtime.quantization")
