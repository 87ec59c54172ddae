from __future__ import annotations

import json
from pathlib import Path

import pytest

from hemiface.benchmarks.latency import RowChoice, TimingSettings, plan_rows, run_worker
from hemiface.benchmarks.macs import macs_from_keras, macs_from_tflite
from hemiface.runtime.manifest import load_manifest


def test_keras_and_tflite_mac_counts_agree(bench_assets: dict[str, Path], tiny: dict) -> None:
    from ai_edge_litert.interpreter import Interpreter

    assert macs_from_keras(tiny["model"](0)) == tiny["macs"]
    for fmt in ("float32", "int8"):
        path = bench_assets["tflite"] / f"mobilenetv2_base_model.{fmt}.tflite"
        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
        assert macs_from_tflite(interpreter) == tiny["macs"], fmt


def _tflite_spec(model_set: Path, fmt: str, image: Path | None) -> dict:
    manifest = load_manifest(model_set, check_files=False)
    settings = TimingSettings(warmup=1, n=5, min_time_s=0.0, max_time_s=5.0, threads=[1])
    choice = RowChoice(["cnn_stroke_model"], [fmt], ["tflite"])
    specs = plan_rows(manifest, model_set, {}, choice, settings, image)
    assert len(specs) == 1
    json.dumps(specs[0])  # a spec must travel as JSON
    return specs[0]


def test_tflite_worker_row(bench_assets: dict[str, Path], tiny: dict) -> None:
    image = next((bench_assets["data"] / "test" / "Left").glob("*.jpg"))
    result = run_worker(_tflite_spec(bench_assets["tflite"], "int8", image), timeout_s=120)
    assert result["ok"], result
    assert len(result["samples_ms"]) >= 5
    assert all(s > 0 for s in result["samples_ms"])
    assert result["macs"] == tiny["macs"]
    assert 0.0 <= result["p"] <= 1.0
    assert result["peak_rss_mb"] > 10
    assert 0 < result["first_inference_s"] < result["cold_start_s"]
    assert result["backend"].startswith("ai-edge-litert")


def test_corrupt_artifact_row_fails_cleanly(corrupt_model_set: Path) -> None:
    spec = _tflite_spec(corrupt_model_set, "int8", None)
    result = run_worker(spec, timeout_s=120)
    assert result["ok"] is False
    assert result["error"]


@pytest.mark.slow
def test_keras_worker_rows(bench_assets: dict[str, Path], tiny: dict) -> None:
    source = bench_assets["keras"] / "cnn_stroke_model.h5"
    image = next((bench_assets["data"] / "test" / "Right").glob("*.jpg"))
    base = {
        "model": "cnn_stroke_model",
        "format": None,
        "threads": 1,
        "keras_path": str(source),
        "warmup": 1,
        "n": 3,
        "min_time_s": 0.0,
        "max_time_s": 5.0,
        "image": str(image),
    }
    for engine in ("keras_predict", "keras_call"):
        result = run_worker({**base, "engine": engine}, timeout_s=300)
        assert result["ok"], result
        assert result["macs"] == tiny["macs"]
        assert result["import_s"] > 0.2  # TensorFlow's import is part of the row
        assert len(result["samples_ms"]) >= 3
