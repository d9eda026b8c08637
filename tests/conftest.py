"""Shared test setup: one torch thread, no torch.compile, no hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("NO_TORCH_COMPILE", "1")
os.environ.setdefault("NO_CUDA_GRAPH", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(autouse=True)
def _fresh_structlog() -> None:
    """A CLI test configures logging onto its captured (later closed) stderr; every test
    starts from structlog's defaults so a later log call never writes to a closed file."""
    import structlog

    structlog.reset_defaults()
