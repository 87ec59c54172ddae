from __future__ import annotations

import numpy as np
import pytest

from hemiface.benchmarks import agreement as metrics
from hemiface.benchmarks.latency import latency_ratios, row_from_result, thread_counts
from hemiface.benchmarks.sections import LatencyRow, SpeedupOverFloat32
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
    def row(engine: str, median: float, fmt: str | None = None) -> LatencyRow:
        spec = {"model": "m", "engine": engine, "format": fmt, "threads": 1}
        result = {"ok": True, "samples_ms": [median]}
        return row_from_result(spec, result, {"m": "M"})

    rows = [
        row("keras_predict", 100.0),
        row("keras_call", 50.0),
        row("tflite", 10.0, "float32"),
        row("tflite", 4.0, "int8"),
    ]
    assert rows[2].engine_label == "tflite:float32" and rows[2].median_ms == 10.0
    over_predict, over_float32 = latency_ratios(rows)
    speedups = {r.engine_label: r.speedup for r in over_predict}
    assert speedups == {"keras_call": 2.0, "tflite:float32": 10.0, "tflite:int8": 25.0}
    assert over_float32 == [SpeedupOverFloat32(model="m", threads=1, format="int8", speedup=2.5)]


def test_a_row_of_a_shared_process_reports_no_cold_start_or_memory() -> None:
    spec = {"model": "m", "engine": "tflite", "format": "int8", "threads": 1}
    result = {"ok": True, "samples_ms": [2.0, 3.0], "cold_start_s": 0.4, "peak_rss_mb": 90.0}
    result |= {"import_s": 0.1, "init_s": 0.05, "rss_ready_mb": 80.0}
    own = row_from_result(spec, result, {})
    shared = row_from_result(spec, result, {}, shared=True)
    assert (own.cold_start_s, own.peak_rss_mb, own.init_s) == (0.4, 90.0, 0.05)
    assert (shared.cold_start_s, shared.peak_rss_mb, shared.import_s) == (None, None, None)
    assert shared.init_s == 0.05 and shared.median_ms == 2.5
