"""Summaries of timing samples: the figures every latency row reports."""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from hemiface.benchmarks.record import Record

K = TypeVar("K", bound=Hashable)


@dataclass
class LatencySummary(Record):
    """Milliseconds over `n` timed single-image runs."""

    n: int
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float


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


def time_round_robin(
    model_sets: Mapping[K, Any],
    rgb: np.ndarray,
    rounds: int,
    per_round: int,
    warmup: int,
    max_time_s: float | None = None,
) -> tuple[dict[K, list[float]], dict[K, list[float]]]:
    """Time open model sets in turn on one image: after `warmup` predictions each, `rounds`
    rounds of `per_round` runs of every set, so that a slow spell of the machine hits all
    of them alike. Returns (whole prediction ms, bare invokes ms) per key; stops after the
    round in which `max_time_s` has passed."""
    whole: dict[K, list[float]] = {key: [] for key in model_sets}
    bare: dict[K, list[float]] = {key: [] for key in model_sets}
    for model_set in model_sets.values():  # warm-up: allocation and weight packing
        for _ in range(warmup):
            model_set.probabilities(rgb)
    deadline = None if max_time_s is None else time.perf_counter() + max_time_s
    for _ in range(rounds):
        for key, model_set in model_sets.items():
            for _ in range(per_round):
                t0 = time.perf_counter()
                model_set.probabilities(rgb)
                t1 = time.perf_counter()
                model_set.bare_invokes()
                t2 = time.perf_counter()
                whole[key].append((t1 - t0) * 1000.0)
                bare[key].append((t2 - t1) * 1000.0)
        if deadline is not None and time.perf_counter() > deadline:
            break
    return whole, bare
