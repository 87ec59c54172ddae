"""Convert with worker processes: the same model set as a serial run, failures reported
with the others, per-step times in the summary, and the default number of workers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SIBLING_FILES

from hemiface.convert import artifact, jobs
from hemiface.convert.pipeline import ConvertSettings, convert_models
from hemiface.convert.tflite_convert import ConversionError
from hemiface.runtime.manifest import MANIFEST_NAME, load_manifest

FORMATS = ("float32", "float16", "dynamic", "int8")


def _without_timings(manifest: Path) -> dict:
    """The manifest with its measured latencies blanked: they are timings of this machine,
    the only part of a set that two runs cannot share."""
    data = json.loads(manifest.read_text())
    for entry in data["models"]:
        if entry.get("verification"):
            entry["verification"]["latency_ms"] = None
    for entry in data["fused"]:
        for check in entry.get("verification", {}).values():
            check["latency_ms"] = None
    return data


@pytest.mark.slow  # two full conversions and two worker processes: about a minute
def test_two_workers_write_the_set_one_writes(sibling_sources: Path, tmp_path: Path) -> None:
    models = [sibling_sources / "models" / name for name in SIBLING_FILES]
    images = sibling_sources / "images"
    serial = convert_models(
        models, tmp_path / "serial", ConvertSettings(formats=FORMATS, calib=images, jobs=1)
    )
    parallel = convert_models(
        models, tmp_path / "parallel", ConvertSettings(formats=FORMATS, calib=images, jobs=2)
    )
    assert serial.timing is not None and serial.timing.workers == 1
    assert parallel.timing is not None and parallel.timing.workers == 2
    assert parallel.timing.peak_worker_rss_mb is not None
    assert not serial.failed and not parallel.failed
    # 3 models x 4 formats, and the fused pair's 2 rows x 4 formats
    assert len(parallel.rows) == len(serial.rows) == 3 * 4 + 2 * 4
    files = sorted(p.name for p in (tmp_path / "serial").glob("*.tflite"))
    assert files == sorted(p.name for p in (tmp_path / "parallel").glob("*.tflite"))
    assert len(files) == 3 * 4 + 4 + 2  # the models, the fused artifacts, the two detectors
    for name in files:
        serial_bytes = (tmp_path / "serial" / name).read_bytes()
        assert (tmp_path / "parallel" / name).read_bytes() == serial_bytes, name
    assert _without_timings(tmp_path / "serial" / MANIFEST_NAME) == _without_timings(
        tmp_path / "parallel" / MANIFEST_NAME
    )
    assert [(r.name, r.format, r.file) for r in serial.rows] == [
        (r.name, r.format, r.file) for r in parallel.rows
    ]


def test_a_failing_artifact_is_reported_with_the_others(
    models_dir: Path, images_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = artifact.convert_to_tflite

    def refuses_float16(saved_model, fmt, *args, **kwargs):  # noqa: ANN001, ANN202
        if fmt == "float16":
            raise ConversionError("TFLite converter failed for float16: simulated refusal")
        return real(saved_model, fmt, *args, **kwargs)

    monkeypatch.setattr(artifact, "convert_to_tflite", refuses_float16)
    summary = convert_models(
        [models_dir / "tiny.keras"],
        tmp_path,
        ConvertSettings(formats=("float32", "float16", "int8"), calib=images_dir, jobs=1),
    )
    assert summary.failed
    by_format = {row.format: row for row in summary.rows}
    assert by_format["float16"].problems == [
        "TFLite converter failed for float16: simulated refusal"
    ]
    assert by_format["float32"].passed and by_format["int8"].passed
    manifest = load_manifest(tmp_path)
    assert sorted(e.format for e in manifest.models) == ["float32", "int8"]


def test_the_summary_says_where_the_time_went(fused_set) -> None:  # noqa: ANN001
    summary, _ = fused_set
    timing = summary.timing
    assert set(timing.steps) >= {"load models", "images", "export", "artifacts", "publish"}
    assert set(timing.artifact_steps) == set(artifact.STEPS)
    assert timing.artifact_steps["convert"] > 0 and timing.artifact_steps["run"] > 0
    assert "summed over the artifacts" in timing.describe()
    assert summary.to_dict()["timing"]["workers"] == timing.workers


def test_default_workers_follow_cores_memory_and_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "cores", lambda: 8)
    monkeypatch.setattr(jobs, "available_memory", lambda: 5 * 2**30)
    assert jobs.default_workers(16, 10_000_000) == 2  # two workers' worth of memory
    assert jobs.default_workers(1, 10_000_000) == 1  # one artifact: no pool
    assert jobs.default_workers(16, 10_000) == 1  # tiny models: no pool
    monkeypatch.setattr(jobs, "available_memory", lambda: None)
    assert jobs.default_workers(3, 10_000_000) == 3
    with pytest.raises(Exception, match="--jobs"):
        ConvertSettings(formats=("float32",), jobs=0)


def test_a_rerun_with_nothing_changed_exports_runs_and_compares_nothing(
    models_dir: Path, images_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hemiface.convert import plan

    settings = ConvertSettings(formats=("float32", "int8"), calib=images_dir, jobs=1)
    first = convert_models([models_dir / "tiny.keras"], tmp_path, settings)
    manifest = (tmp_path / MANIFEST_NAME).read_bytes()
    exported: list[Path] = []
    real = plan.export_saved_model
    monkeypatch.setattr(
        plan,
        "export_saved_model",
        lambda model, folder: exported.append(folder) or real(model, folder),
    )
    again = convert_models([models_dir / "tiny.keras"], tmp_path, settings)
    assert all(row.reused for row in again.rows) and exported == []
    assert again.timing is not None and "keras" not in again.timing.steps
    assert [r.verification for r in again.rows] == [r.verification for r in first.rows]
    assert (tmp_path / MANIFEST_NAME).read_bytes() == manifest
    # A changed artifact is converted (its model exported) and compared again.
    (tmp_path / "tiny.int8.tflite").write_bytes(b"changed")
    third = convert_models([models_dir / "tiny.keras"], tmp_path, settings)
    assert [row.reused for row in third.rows] == [True, False] and len(exported) == 1
    assert third.timing is not None and "keras" in third.timing.steps
