"""Quantisation on CPU (int8 runs; int4/fp8 refused with the device named) and the worker."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from entropi.core.errors import ModelError
from entropi.engine import EngineWorker, FrameOut, PrimeStats, load_engine
from entropi.engine.model import module_bytes, tensor_bytes

from .conftest import PROMPT


def test_int8_runs_on_cpu_with_smaller_weights(make_config) -> None:
    engine = load_engine(make_config(quantization="int8"))
    weight = engine.lm.transformer.layers[0].self_attn.in_projs[0].weight
    assert "Int8" in type(weight).__name__
    assert tensor_bytes(weight) < 0.3 * weight.numel() * 4  # int8 + per-row scales vs fp32
    engine.prime(PROMPT)
    outs = [engine.step(np.zeros(1920, np.float32)) for _ in range(3)]
    assert all(np.isfinite(o.pcm).all() for o in outs)
    stats = engine.memory_stats()
    plain = load_engine(make_config(quantization="none"))
    # int8 weights are a quarter of fp32 (embeddings stay fp32, so less than 4x overall).
    assert module_bytes(engine.lm) < 0.8 * module_bytes(plain.lm)
    assert stats["weights_bytes"] < plain.memory_stats()["weights_bytes"]
    assert stats["device"].startswith("cpu") and stats["peak_bytes"] > stats["weights_bytes"]


@pytest.mark.parametrize("quant, needs", [("int4", "needs a CUDA GPU"),
                                          ("fp8", "needs a CUDA GPU")])
def test_cuda_only_quantisation_fails_clearly_on_cpu(make_config, quant: str, needs: str) -> None:
    with pytest.raises(ModelError, match=rf"runtime\.quantization: {quant} {needs} but the "
                                         rf"device is cpu .*use one of none, int8"):
        load_engine(make_config(quantization=quant))


async def test_worker_runs_the_engine_on_one_thread(make_config) -> None:
    worker = EngineWorker(make_config())
    engine = await worker.start()
    assert worker.engine is engine
    stats = await worker.prime(PROMPT)
    assert isinstance(stats, PrimeStats) and stats.tokens == len(engine.prompt_ids(PROMPT))
    # Frames submitted concurrently still run one at a time, in order, on the model thread.
    pcm = np.zeros(1920, np.float32)
    outs = await asyncio.gather(*(worker.step(pcm) for _ in range(4)))
    assert all(isinstance(o, FrameOut) and o.pcm.shape == (1920,) for o in outs)
    assert engine.lm_gen._streaming_state.offset_cpu == engine.prefix(PROMPT).frames + 4
    names = await asyncio.gather(*(worker.call(lambda: __import__("threading")
                                                .current_thread().name) for _ in range(3)))
    assert len(set(names)) == 1 and names[0].startswith("entropi-engine")
    await worker.close()
    with pytest.raises(RuntimeError, match="not started"):
        await worker.step(pcm)


async def test_worker_start_reports_load_errors(make_config) -> None:
    worker = EngineWorker(make_config(quantization="int4"))
    with pytest.raises(ModelError, match="int4 needs a CUDA GPU"):
        await worker.start()
    with pytest.raises(RuntimeError, match="not completed"):
        _ = worker.engine
