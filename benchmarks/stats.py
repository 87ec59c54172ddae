"""Summaries of timing samples: the figures every latency row reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class LatencySummary:
    """Milliseconds over `n` timed single-image runs."""

    n: int
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def summarize_ms(samples_ms: Sequence[float]) -> LatencySummary:
    """Median, p90, p99, mean, std (population), min and max of latency samples in ms.

    Percentiles use linear interpolation, so min <= median <= p90 <= p99 <= max always.
    """
    values = np.asarray(samples_ms, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no timing samples to summarize")
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return LatencySummary(
        n=int(values.size),
        median_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        mean_ms=float(values.mean()),
        std_ms=float(values.std()),
        min_ms=float(values.min()),
        max_ms=float(values.max()),
    )


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return float(numerator) / float(denominator)
