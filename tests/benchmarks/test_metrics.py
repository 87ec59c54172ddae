from __future__ import annotations

import numpy as np
import pytest

from hemiface.benchmarks import metrics
from hemiface.benchmarks.latency import latency_ratios, thread_counts
from hemiface.benchmarks.stats import summarize_ms


def test_artifact_against_itself_agrees_fully() -> None:
    p = np.random.default_rng(0).random(50)
    same = metrics.compare_probabilities(p, p.copy())
    assert same.label_agreement == 1.0
    assert same.flips == 0
    assert same.mean_abs_dp == same.p99_abs_dp == same.max_abs_dp == 0.0


def test_compare_counts_flips_and_deltas() -> None:
    a = np.array([0.1, 0.6, 0.49, 0.9])
    b = np.array([0.1, 0.4, 0.51, 0.9])
    result = metrics.compare_probabilities(a, b)
    assert result.flips == 2
    assert result.label_agreement == 0.5
    assert result.max_abs_dp == pytest.approx(0.2)
    assert result.mean_abs_dp == pytest.approx(0.055)
    assert result.mean_abs_dp <= result.p99_abs_dp <= result.max_abs_dp


def test_compare_refuses_mismatched_vectors() -> None:
    with pytest.raises(ValueError):
        metrics.compare_probabilities(np.zeros(3), np.zeros(4))


def test_ensemble() -> None:
    vectors = [np.array([0.9, 0.1]), np.array([0.6, 0.2]), np.array([0.3, 0.7])]
    assert metrics.ensemble_probability(vectors) == pytest.approx([0.6, 1 / 3])
    assert metrics.majority_vote(vectors).tolist() == [1, 0]


def test_latency_summary_percentiles_are_ordered() -> None:
    samples = np.random.default_rng(1).lognormal(1.0, 0.5, 200)
    s = summarize_ms(samples)
    assert s.n == 200
    assert s.min_ms <= s.median_ms <= s.p90_ms <= s.p99_ms <= s.max_ms
    assert s.mean_ms == pytest.approx(samples.mean())
    with pytest.raises(ValueError):
        summarize_ms([])


def test_thread_counts_capped_at_cores() -> None:
    assert thread_counts([1, 2, 4], 2) == [1, 2]
    assert thread_counts([4, 1], 8) == [1, 4]
    assert thread_counts([3], 1) == [1]


def test_latency_ratios() -> None:
    def row(engine_label: str, median: float, fmt: str | None = None) -> dict:
        engine = "tflite" if fmt else engine_label
        return {
            "model": "m",
            "threads": 1,
            "engine_label": engine_label,
            "engine": engine,
            "format": fmt,
            "status": "ok",
            "median_ms": median,
        }

    rows = [
        row("keras_predict", 100.0),
        row("keras_call", 50.0),
        row("tflite:float32", 10.0, "float32"),
        row("tflite:int8", 4.0, "int8"),
    ]
    ratios = latency_ratios(rows)
    speedups = {r["engine_label"]: r["speedup"] for r in ratios["speedup_over_predict"]}
    assert speedups == {"keras_call": 2.0, "tflite:float32": 10.0, "tflite:int8": 25.0}
    assert ratios["speedup_over_float32"] == [
        {"model": "m", "threads": 1, "format": "int8", "speedup": 2.5}
    ]
