from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hemiface.benchmarks.schema import validate
from hemiface.cli import app


def _run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["bench", *args])
    detail = repr(result.exception) if result.exception else ""
    return result.exit_code, result.output + detail


def test_bench_tflite_rows_agreement_and_a_failing_row(
    bench_assets: dict[str, Path], corrupt_model_set: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, output = _run(
        [
            "--tflite", str(corrupt_model_set),
            "--keras", str(bench_assets["keras"]),
            "--data", str(bench_assets["data"]),
            "--out", str(out),
            "--quick",
            "--only", "tflite,latency,agreement",
        ]
    )  # fmt: skip
    # Two artifacts are broken: the run completes, reports them, and exits non-zero.
    assert code == 1, output
    results = json.loads((out / "results.json").read_text())
    assert validate(results) == []
    rows = {(r["model"], r["engine_label"]): r for r in results["latency"]["rows"]}
    assert len(rows) == 6
    assert rows["cnn_stroke_model", "tflite:int8"]["status"] == "failed"
    tampered = rows["mobilenetv2_finetuned_model", "tflite:float32"]
    assert tampered["status"] == "failed" and "sha256" in tampered["error"]
    good = [r for r in rows.values() if r["status"] == "ok"]
    assert len(good) == 4
    for r in good:
        assert r["median_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"]
        assert r["peak_rss_mb"] > 0 and r["cold_start_s"] > 0 and r["macs"] > 0
    assert results["latency"]["speedup_over_float32"]  # Base and CNN? Base only has both
    # Agreement: Keras source is used (the engines filter keeps Keras out of latency only).
    agreement = results["agreement"]
    assert agreement["status"] == "ok"
    failed_items = " ".join(f["item"] for f in agreement["failures"])
    assert "cnn_stroke_model int8" in failed_items
    assert results["pipeline"]["status"] == "skipped"
    report = (out / "report.md").read_text()
    assert "failed" in report and "Headline" in report
    assert (out / "latency.png").stat().st_size > 1000
    assert (out / "agreement_matrix.png").exists() and (out / "abs_dp.png").exists()


def test_bench_rejects_unknown_only_token(bench_assets: dict[str, Path], tmp_path: Path) -> None:
    code, _ = _run(
        ["--tflite", str(bench_assets["tflite"]), "--out", str(tmp_path), "--only", "nonsense"]
    )
    assert code != 0


@pytest.mark.slow
def test_bench_full_quick_run_with_keras_rows(
    bench_assets: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, output = _run(
        [
            "--tflite", str(bench_assets["tflite"]),
            "--keras", str(bench_assets["keras"]),
            "--data", str(bench_assets["data"]),
            "--out", str(out),
            "--quick",
            "--only", "CNN",
        ]
    )  # fmt: skip
    assert code == 0, output
    results = json.loads((out / "results.json").read_text())
    assert validate(results) == []
    labels = {r["engine_label"] for r in results["latency"]["rows"] if r["status"] == "ok"}
    assert labels == {"keras_predict", "keras_call", "tflite:float32", "tflite:int8"}
    speedups = {s["engine_label"] for s in results["latency"]["speedup_over_predict"]}
    assert speedups == {"keras_call", "tflite:float32", "tflite:int8"}
    assert any("model.predict" in line for line in results["headline"])
    (vs,) = [v for v in results["agreement"]["vs_source"] if v["format"] == "float32"]
    assert vs["label_agreement"] == 1.0


def test_bench_pipeline_section(bench_assets: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, output = _run(
        [
            "--tflite", str(bench_assets["tflite"]),
            "--out", str(out),
            "--quick",
            "--frames", "8",
            "--only", "pipeline,int8",
            "--no-plots",
        ]
    )  # fmt: skip
    assert code == 0, output
    results = json.loads((out / "results.json").read_text())
    assert validate(results) == []
    assert results["latency"]["status"] == "skipped"
    (row,) = results["pipeline"]["rows"]
    assert row["status"] == "ok" and row["format"] == "int8"
    assert row["frames"] == 8 and row["fps"] > 0 and row["models"] == 3
    assert len(row["frame_ms"]) == 8
    assert row["median_ms"] <= row["p90_ms"]
    assert "FPS" in (out / "report.md").read_text()
    assert not (out / "latency.png").exists()


def test_bench_without_keras_skips_the_keras_rows_and_exits_zero(
    bench_assets: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, output = _run(
        [
            "--tflite", str(bench_assets["tflite"]),
            "--out", str(out),
            "--quick",
            "--only", "CNN,float32,latency",
            "--no-plots",
        ]
    )  # fmt: skip
    assert code == 0, output
    results = json.loads((out / "results.json").read_text())
    assert validate(results) == []
    (row,) = results["latency"]["rows"]
    assert row["engine_label"] == "tflite:float32" and row["status"] == "ok"
    assert "keras_predict" not in results["settings"]["engines"]
    (skipped,) = results["latency"]["skipped"]
    assert "no --keras" in skipped
    assert "Skipped: Keras rows" in (out / "report.md").read_text()


def test_bench_keras_engines_alone_without_keras_is_one_line(
    bench_assets: dict[str, Path], tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app,
        ["bench", "--tflite", str(bench_assets["tflite"]), "--out", str(tmp_path)]
        + ["--only", "keras,latency"],
    )
    assert result.exit_code != 0
    assert "--keras" in str(result.exception) and "\n" not in str(result.exception)
