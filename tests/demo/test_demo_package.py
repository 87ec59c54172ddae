"""The demo package without TensorFlow: typed stage records, the cache, the runner and
the walk-through, on hand-made records and stand-in stages."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hemiface.benchmarks.detector_records import FaceFinds, FaceSizeBand, SizeToneCell, SkinToneBand
from hemiface.core.errors import HemifaceError
from hemiface.demo.cache import cached_output, remember
from hemiface.demo.context import DemoContext, shipped_reference
from hemiface.demo.index import write_index
from hemiface.demo.results import (
    Backbone,
    BenchOutput,
    ConvertOutput,
    ConvertRow,
    DataOutput,
    ExplainedImage,
    ExplainedModel,
    ExplainOutput,
    HeldoutMetrics,
    ResultFormatError,
    RuntimeOutput,
    StageOutput,
    TrainOutput,
)
from hemiface.demo.runner import STAGE_NAMES, Stage, StageResult, run_demo, run_stage


def _records(tmp: Path) -> dict[str, StageOutput]:
    model = ExplainedModel("Base", 0.9, "Right", "Right", 0.01, 64, "Right", 1.8)
    return {
        "data": DataOutput(images=600, cached=True, folder=str(tmp / "data")),
        "train": TrainOutput(
            origin="the reference set",
            recipe="reference",
            command="hemiface train --recipe reference",
            backbone=Backbone("synthetic-faces-v1", 3600, 115200, 4946.8, 0.98, {"96px": 0.99}),
            heldout_seed=4242,
            heldout_images=1000,
            heldout={"mobilenetv2_base_model": HeldoutMetrics(0.98, None, 0.022)},
            wall_time_s=12.5,
            folder=str(tmp / "models"),
        ),
        "convert": ConvertOutput(
            rows=[
                ConvertRow(
                    "Base",
                    "int8",
                    2.61,
                    0.25,
                    0.99,
                    0.0312,
                    0.97,
                    1.5,
                    "2.17.0",
                    {"ai-edge-litert": "ok"},
                    "passed",
                ),  # fmt: skip
                ConvertRow(
                    "CNN",
                    "float16",
                    1.0,
                    0.5,
                    None,
                    None,
                    None,
                    None,
                    "2.3.0",
                    {},
                    "failed: no verification",
                ),  # fmt: skip
            ],
            seconds=40.2,
            manifest=str(tmp / "modelset" / "hemiface.json"),
            timing="2 workers; load models 3.0 s; peak RSS 900 MB",
        ),
        "runtime": RuntimeOutput(
            format="int8",
            format_reason="fastest measured here",
            images=6,
            image_accuracy=5 / 6,
            figures=[],
            video=str(tmp / "runtime" / "camera_stand_in.mp4"),
            recording=str(tmp / "runtime" / "annotated.mp4"),
            frames=90,
            frames_with_prediction=88,
            no_face_frames=2,
            fps=31.5,
            video_accuracy=0.9,
            video_accuracy_by_model={"Base": 0.92, "CNN": None},
            stage_ms={"read": 1.2, "models": 8.0},
            face_detector="blazeface",
            face_detection=FaceFinds(
                seed=123,
                frame_size=[640, 480],
                faces=100,
                detectors=["haar", "blazeface"],
                found={"haar": 50, "blazeface": 98},
                rate={"haar": 0.5, "blazeface": 0.98},
                size_bands=[
                    FaceSizeBand(50, {"haar": 10, "blazeface": 48}, {"haar": 0.2}, 80, 120),
                    FaceSizeBand(50, {"haar": 40, "blazeface": 50}, {"haar": 0.8}, 260, 340),
                ],
                skin_tone_bands=[
                    SkinToneBand(50, {"haar": 20, "blazeface": 49}, {"haar": 0.4}, 40.0, 90.0),
                    SkinToneBand(50, {"haar": 30, "blazeface": 49}, {"haar": 0.6}, 91.0, 230.0),
                ],
                cells=[SizeToneCell(25, {"haar": 2, "blazeface": 24}, {"haar": 0.08}, 0, 0)],
            ),
        ),
        "explain": ExplainOutput(
            {"Left": ExplainedImage("l.png", None, None, [model], {"total": 3.2})}
        ),
        "bench": BenchOutput(files=[], report=str(tmp / "bench" / "report.md")),
    }


def test_every_record_survives_its_json_form(tmp_path: Path) -> None:
    for name, record in _records(tmp_path).items():
        text = json.dumps(record.to_json())
        assert type(record).from_json(json.loads(text)) == record, name


def test_data_record_keeps_the_two_shapes_of_its_json() -> None:
    assert list(DataOutput(images=3, cached=True, folder="d").to_json()) == [
        "images",
        "cached",
        "folder",
    ]
    rendered = DataOutput(images=3, images_per_s=9.5, seconds=0.3, folder="d").to_json()
    assert list(rendered) == ["images", "images_per_s", "seconds", "folder"]


def test_explain_record_is_keyed_by_true_label(tmp_path: Path) -> None:
    data = _records(tmp_path)["explain"].to_json()
    assert list(data) == ["Left"]
    assert data["Left"]["models"][0]["laterality"] == "Right"


def test_loading_names_a_missing_unknown_or_mistyped_field(tmp_path: Path) -> None:
    data = _records(tmp_path)["train"].to_json()
    missing = {k: v for k, v in data.items() if k != "heldout_seed"}
    with pytest.raises(ResultFormatError, match="missing field 'heldout_seed'"):
        TrainOutput.from_json(missing)
    with pytest.raises(ResultFormatError, match="unknown field.*treshold"):
        TrainOutput.from_json({**data, "treshold": 0.5})
    bad = json.loads(json.dumps(data))
    bad["backbone"]["steps"] = "many"
    with pytest.raises(ResultFormatError, match=r"\$\.backbone\.steps: expected int"):
        TrainOutput.from_json(bad)
    bad["backbone"]["steps"] = True  # a bool is not a count
    with pytest.raises(ResultFormatError, match="steps"):
        TrainOutput.from_json(bad)


def test_stage_result_refuses_a_record_of_another_kind(tmp_path: Path) -> None:
    result = StageResult("bench", "ok", outputs=_records(tmp_path)["data"])
    with pytest.raises(TypeError, match="no BenchOutput record"):
        result.output(BenchOutput)
    with pytest.raises(TypeError, match="failed"):
        StageResult("bench", "failed").output(BenchOutput)


def _context(tmp_path: Path) -> DemoContext:
    models = tmp_path / "models"
    models.mkdir()
    ctx = DemoContext(tmp_path / "out", quick=True, progress=lambda *_: None, reference=models)
    ctx.out.mkdir()
    for path in ctx.keras_files():
        path.write_bytes(b"keras")
    ctx.data.mkdir()
    (ctx.data / "labels.csv").write_text("file,label\n")
    return ctx


def _explain_stage(calls: list[int], tmp_path: Path) -> Stage[ExplainOutput]:
    record = _records(tmp_path)["explain"]
    assert isinstance(record, ExplainOutput)

    def run(ctx: DemoContext) -> ExplainOutput:
        calls.append(1)
        for label in ("left", "right"):
            folder = ctx.out / "explain" / label
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "explain.json").write_text("{}")
        return record

    return Stage("explain", run, ExplainOutput, ())


def test_a_stage_with_unchanged_inputs_reuses_its_record(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    calls: list[int] = []
    stage = _explain_stage(calls, tmp_path)
    first = run_stage(ctx, stage)
    second = run_stage(ctx, stage)
    assert (first.status, second.status, len(calls)) == ("ok", "ok", 1)
    assert second.detail == "cached: inputs unchanged"
    assert second.output(ExplainOutput) == first.output(ExplainOutput)

    model = ctx.keras_files()[0]
    model.write_bytes(b"a retrained model")  # an input changed: run again
    os.utime(model, ns=(1, 1))
    assert run_stage(ctx, stage).detail == "" and len(calls) == 2

    (ctx.out / "explain" / "left" / "explain.json").unlink()  # an output is gone
    run_stage(ctx, stage)
    assert len(calls) == 3


def test_a_cache_record_of_other_fields_is_run_again(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    calls: list[int] = []
    stage = _explain_stage(calls, tmp_path)
    run_stage(ctx, stage)
    record_file = ctx.out / ".cache" / "explain.json"
    record = json.loads(record_file.read_text())
    record["outputs"]["Left"]["renamed"] = record["outputs"]["Left"].pop("figure")
    record_file.write_text(json.dumps(record))
    assert cached_output(ctx, "explain", ExplainOutput) is None
    record_file.write_text("{half a reco")
    assert cached_output(ctx, "explain", ExplainOutput) is None


def test_stages_that_are_not_cached_leave_no_record(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    remember(ctx, "data", _records(tmp_path)["data"])
    remember(ctx, "train", _records(tmp_path)["train"])  # the shipped set: not cached
    assert not (ctx.out / ".cache").exists()


def test_runner_skips_dependants_of_a_failed_stage_and_writes_the_summary(
    tmp_path: Path,
) -> None:
    records = _records(tmp_path)

    def ok(name: str) -> Stage[StageOutput]:
        return Stage(name, lambda ctx: records[name], type(records[name]), ())

    def broken(ctx: DemoContext) -> StageOutput:
        raise ValueError("a bug in the stage")

    def refused(ctx: DemoContext) -> StageOutput:
        raise HemifaceError("reference/: checksum mismatch")

    stages = (
        ok("data"),
        Stage("train", refused, TrainOutput, ("data",)),
        Stage("convert", broken, ConvertOutput, ("data",)),
        Stage("runtime", lambda ctx: records["runtime"], RuntimeOutput, ("data", "convert")),
        ok("bench"),
    )
    seen: list[str] = []
    out = tmp_path / "out"
    results = run_demo(out, True, lambda *_: None, lambda r: seen.append(r.name),
                       stage_list=stages)  # fmt: skip
    assert seen == ["data", "train", "convert", "runtime", "bench"]
    statuses = {name: r.status for name, r in results.items()}
    assert statuses == {
        "data": "ok",
        "train": "failed",
        "convert": "failed",
        "runtime": "skipped",
        "bench": "ok",
    }
    assert results["train"].detail == "reference/: checksum mismatch"
    assert results["convert"].detail == "ValueError: a bug in the stage"
    assert "Traceback" in (out / "convert.error.txt").read_text()
    assert not (out / "train.error.txt").exists()
    assert results["runtime"].detail == "needs convert"

    summary = json.loads((out / "demo.json").read_text())
    assert summary["data"]["outputs"] == {"images": 600, "cached": True,
                                          "folder": str(tmp_path / "data")}  # fmt: skip
    assert summary["train"]["outputs"] == {}
    index = (out / "index.md").read_text()
    assert "The models are not available: reference/: checksum mismatch" in index
    assert "Runtime: skipped needs convert" in index


def test_walk_through_shows_the_typed_records(tmp_path: Path) -> None:
    results = {
        name: StageResult(name, "ok", 1.0, outputs=record)
        for name, record in _records(tmp_path).items()
    }
    shipped = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "results.json"
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "results.json").write_text(shipped.read_text())
    md, html = write_index(tmp_path, results, quick=True)
    text = md.read_text()
    first_line = json.loads(shipped.read_text())["headline"][0]
    assert f"- {first_line}" in text
    assert text.startswith("# hemiface demo (quick)")
    assert "pretrained from scratch on 115200 synthetic faces (3600 steps, 4947 s)" in text
    assert "| mobilenetv2_base_model | 0.980 | - | 0.022 |" in text
    assert "| CNN | float16 | 1.00 | 0.50 | - | - | - | - | 2.3.0 | failed: no verification |" in (
        text
    )
    assert "| 40-90 | 50 | 20 (40%) | 49 (98%) |" in text  # rows: skin-tone quartiles
    assert "| face-box height (px) | faces | found by haar | found by blazeface |" in text
    assert "| 80-120 | 50 | 10 (20%) | 48 (96%) |" in text  # rows: face-size bands
    assert "by model: Base 0.920, CNN -." in text
    assert "| Base | 0.900 | Right | Right | 0.0100 | 64 | Right | 1.80 |" in text
    assert "<h2>5. Latency and agreement</h2>" in html.read_text()
    assert "Where convert's time went: 2 workers; load models 3.0 s" in text
    # Files are named relative to the demo folder, never by the machine's absolute path.
    assert str(tmp_path) not in text and str(tmp_path) not in html.read_text()


def test_walk_through_surfaces_a_record_of_the_wrong_kind(tmp_path: Path) -> None:
    records = _records(tmp_path)
    results = {"convert": StageResult("convert", "ok", outputs=records["runtime"])}
    with pytest.raises(TypeError, match="no ConvertOutput record"):
        write_index(tmp_path, results, quick=False)


def test_the_runner_knows_the_seven_stages_and_the_shipped_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert STAGE_NAMES == ("data", "train", "convert", "runtime", "explain", "bench", "drift")
    monkeypatch.delenv("HEMIFACE_REFERENCE", raising=False)
    assert (shipped_reference() / "SHA256SUMS").is_file()


def test_the_command_keeps_its_options() -> None:
    from typer.testing import CliRunner

    from hemiface.cli import app

    done = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    for option in ("--out", "--quick", "--retrain"):
        assert option in done.output
