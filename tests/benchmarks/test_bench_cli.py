from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hemiface.benchmarks.sections import validate
from hemiface.cli import app
from hemiface.runtime.backends import physical_cores


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
            "--frames", "8",
            "--threads", "1",
            "--only", "pipeline,int8",
            "--no-plots",
        ]
    )  # fmt: skip
    assert code == 0, output
    results = json.loads((out / "results.json").read_text())
    assert validate(results) == []
    assert results["latency"]["status"] == "skipped"
    rows = {r["variant"]: r for r in results["pipeline"]["rows"]}
    assert list(rows) == ["before", "fused", "models", "overlap", "both", "lanes", "auto"]
    for variant, row in rows.items():
        assert row["status"] == "ok" and row["format"] == "int8"
        assert row["frames"] == 8 and row["fps"] > 0 and row["models"] == 3
        assert len(row["frame_ms"]) == 8
        assert row["median_ms"] <= row["p90_ms"]
        assert {"read", "face", "models"} <= set(row["stage_ms"])
        assert ("face_wait" in row["stage_ms"]) == (row["mode"] in ("overlap", "both"))
        assert row["mode"] == variant or variant in ("before", "fused", "auto")
    assert rows["before"]["mode"] == "sequential" and rows["models"]["threads"] == 1
    # auto on two or more cores takes lanes untimed; on one core it times the others.
    auto = rows["auto"]
    if physical_cores() >= 2:
        assert auto["mode"] == "lanes" and "one frame a core" in auto["mode_reason"]
    else:
        assert set(auto["mode_ms_per_frame"]) >= {"models, 1 thread", "both, 1 thread"}
    # Each row says what the cores could reach at its own stage times.
    for row in rows.values():
        assert row["ceiling_fps"] > 0
    report = (out / "report.md").read_text()
    assert "FPS" in report and "auto, int8: chose" in report
    assert not (out / "latency.png").exists()


def test_bench_set_section_and_partitions(fused_set, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    code, output = _run(
        [
            "--tflite", str(fused_set[1]),
            "--out", str(out),
            "--quick",
            "--only", "set",
            "--no-plots",
        ]
    )  # fmt: skip
    assert code == 0, output
    results = json.loads((out / "results.json").read_text())
    assert validate(results) == []
    key = ("format", "fused", "concurrency", "threads")
    rows = {tuple(r[k] for k in key): r for r in results["set"]["rows"]}
    formats, fused, modes = ("float32", "int8"), (False, True), ("sequential", "threads")
    assert set(rows) == {(f, u, m, 1) for f in formats for u in fused for m in modes}
    reference = rows["float32", False, "sequential", 1]
    assert reference["vs_reference"] == 1.0 and reference["interpreters"] == 3
    assert rows["float32", True, "sequential", 1]["interpreters"] == 2
    for row in rows.values():
        assert row["toolkit"]["median_ms"] > 0 and row["bare"]["median_ms"] > 0
        assert row["overhead_pct"] == pytest.approx(
            (row["toolkit"]["median_ms"] / row["bare"]["median_ms"] - 1) * 100
        )
    fused_p, separate_p = rows["float32", True, "sequential", 1]["p"], reference["p"]
    assert np.max(np.abs(np.subtract(fused_p, separate_p))) <= 1e-5
    partitions = {(r["artifact"], r["format"]): r for r in results["delegation"]["rows"]}
    assert len(partitions) == 10  # 3 models x 2 formats, 2 fused, the two face detectors
    assert all(r["partitions"] == 1 and r["undelegated_ops"] == [] for r in partitions.values())
    assert any("Every artifact is one XNNPACK partition" in line for line in results["headline"])
    assert any(line.startswith("Set of 3 models, float32 fused") for line in results["headline"])
    report = (out / "report.md").read_text()
    assert "## The set as a whole" in report and "## Delegate partitions" in report


def test_cpu_flags_read_x86_and_arm(tmp_path: Path) -> None:
    from hemiface.benchmarks.machine import cpu_flags

    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma avx512_vnni\n\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd evtstrm asimddp\n\n")
    assert cpu_flags(x86) == ["avx2", "fma", "avx512_vnni"]
    assert cpu_flags(arm) == ["asimd", "asimddp"]
    assert cpu_flags(tmp_path / "missing") == []


def test_int8_io_section(sibling_sources: Path, tmp_path: Path) -> None:
    from hemiface.benchmarks.int8_io import int8_io_section
    from hemiface.benchmarks.report import int8_io_table

    images = sibling_sources / "images"
    model = sibling_sources / "models" / "cnn_stroke_model.keras"
    section = int8_io_section([model], images, images, tmp_path)
    assert section.status == "ok", section.reason
    rows = {r.io: r for r in section.rows}
    assert set(rows) == {"int8", "uint8"}
    assert rows["int8"].pixels == "int8" and rows["uint8"].pixels == "uint8"
    assert rows["int8"].undelegated_ops == [] and "QUANTIZE" in (
        rows["uint8"].undelegated_ops or []
    )
    # The same quantization shifted by 128: the same answers.
    assert rows["int8"].agreement == rows["uint8"].agreement
    assert rows["int8"].max_abs_dp == pytest.approx(rows["uint8"].max_abs_dp, abs=1e-6)
    assert all(r.bare_ms > 0 and r.whole_ms >= r.bare_ms * 0.5 for r in rows.values())
    assert any("int8/uint8" in line for line in int8_io_table(section))
    broken = int8_io_section([tmp_path / "missing.keras"], images, images, tmp_path / "w")
    assert broken.status == "failed" and "convert --int8-io int8 failed" in (broken.reason or "")


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


def test_bench_backend_is_a_choice_and_the_invocation_names_its_value() -> None:
    from hemiface.benchmarks.cli import _invocation
    from hemiface.runtime.options import Backend

    args = _invocation({"tflite": Path("set"), "backend": Backend.tflite_runtime, "plots": True})
    assert args == ["bench", "--tflite", "set", "--backend", "tflite-runtime"]
    code, output = _run(["--tflite", "set", "--out", "o", "--backend", "litert"])
    assert code == 2 and "'--backend'" in output


def test_demo_profile_times_every_row_in_one_process_and_says_so(
    bench_assets: dict[str, Path], tmp_path: Path
) -> None:
    from hemiface.benchmarks.bench import DEMO_IMAGES, demo_config, run_bench
    from hemiface.benchmarks.output import write_outputs

    config = demo_config(
        bench_assets["tflite"], tmp_path, bench_assets["keras"], bench_assets["data"]
    )
    config.only += ["CNN", "latency", "agreement"]  # the profile's rows on one model, quickly
    steps: list[str] = []
    results = run_bench(config, steps.append)
    assert "latency: 3 rows in one process" in steps
    rows = {r.engine_label: r for r in results.latency.rows}
    assert set(rows) == {"keras_predict", "tflite:float32", "tflite:int8"}  # no model(x)
    for row in rows.values():
        assert row.status == "ok" and row.median_ms and row.n == 10, row.error
        assert row.cold_start_s is None and row.peak_rss_mb is None  # not the row's own
    assert results.latency.shared_process is True
    assert {s.engine_label for s in results.latency.speedup_over_predict or []} == {
        "tflite:float32",
        "tflite:int8",
    }
    assert results.settings.profile == "demo" and results.agreement.n_images == 12 <= DEMO_IMAGES
    assert results.headline[0].startswith("Demo profile: 10 timed runs a row")
    assert "12 labelled images (6 positive) for agreement" in results.headline[0]
    write_outputs(results.to_json(), tmp_path, plots=False)
    report = (tmp_path / "report.md").read_text()
    assert "Not measured: every row of this run was timed in one shared process" in report
