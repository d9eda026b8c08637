"""Percentiles as the benchmarks report them (rounded; None when nothing was measured)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def percentile(values: Iterable[float], q: float, digits: int = 1) -> float | None:
    """The ``q``-th percentile rounded to ``digits``; None when nothing was measured."""
    data = np.asarray(list(values), dtype=np.float64)
    return round(float(np.percentile(data, q)), digits) if data.size else None
