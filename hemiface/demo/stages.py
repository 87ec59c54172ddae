"""The demo's stages: each takes the context and returns its typed record.

data (synthetic faces) -> train (the three reference models: by default the set this
repository ships in reference/, checked against its SHA256SUMS; with --retrain trained
from nothing by a named recipe) -> convert (four TFLite formats, two with --quick;
verified) -> runtime (images and a generated video, headless, recorded) -> explain (one
Left and one Right test image) -> bench (latency and agreement).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hemiface.core.domain import LABELS
from hemiface.core.errors import HemifaceError
from hemiface.demo.context import (
    DETECTOR_FACES,
    DETECTOR_NAMES,
    FULL_IMAGES,
    QUICK_FORMATS,
    QUICK_IMAGES,
    SAMPLE_IMAGES,
    SEED,
    VIDEO_FPS,
    VIDEO_SECONDS,
    VIDEO_SEED,
    DemoContext,
)
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
    RuntimeOutput,
    TrainOutput,
    load,
)


def stage_data(ctx: DemoContext) -> DataOutput:
    from hemiface.synth.dataset import LABELS_CSV, generate_dataset, read_labels

    count = QUICK_IMAGES if ctx.quick else FULL_IMAGES
    if (ctx.data / LABELS_CSV).is_file():
        rows = read_labels(ctx.data)
        if len(rows) == count:
            return DataOutput(images=len(rows), cached=True, folder=str(ctx.data))
    summary = generate_dataset(
        ctx.data,
        count,
        seed=SEED,
        overwrite=True,
        progress=lambda done: ctx.progress("rendering faces", done, count),
    )
    return DataOutput(
        images=summary.count,
        images_per_s=round(summary.images_per_s, 1),
        seconds=round(summary.wall_time_s, 1),
        folder=str(ctx.data),
    )


def stage_train(ctx: DemoContext) -> TrainOutput:
    from hemiface.train.recipe import HELDOUT_JSON, build_recipe, recipe_named, verify_checksums

    if ctx.retrain:
        recipe = recipe_named("quick" if ctx.quick else "reference")
        summary = build_recipe(recipe, ctx.models, ctx.out / "train-work", progress=ctx.progress)
        origin = f"trained in this run by `{recipe.command(ctx.models)}`"
    else:
        folder = ctx.reference
        if not folder.is_dir():
            raise HemifaceError(
                f"{folder}: no shipped reference set here (run from a clone of the repository, "
                "set HEMIFACE_REFERENCE, or use --retrain)"
            )
        verify_checksums(folder)
        summary = json.loads((folder / HELDOUT_JSON).read_text())
        origin = f"the reference set shipped with hemiface ({folder.name}/, sha256 checked)"
    heldout = summary["heldout"]
    return TrainOutput(
        origin=origin,
        recipe=summary["recipe"],
        command=summary["command"],
        backbone=load(Backbone, summary["backbone"], "backbone"),
        heldout_seed=heldout["seed"],
        heldout_images=heldout["images"],
        heldout={
            name: HeldoutMetrics(m["accuracy"], m["roc_auc"], m["flip_consistency"])
            for name, m in heldout["models"].items()
        },
        wall_time_s=summary["wall_time_s"],
        folder=str(ctx.models),
    )


def stage_convert(ctx: DemoContext) -> ConvertOutput:
    from hemiface.convert.pipeline import ConvertSettings, convert_models
    from hemiface.runtime.manifest import FORMATS

    summary = convert_models(
        ctx.keras_files(),
        ctx.modelset,
        ConvertSettings(
            formats=QUICK_FORMATS if ctx.quick else FORMATS,
            calib=ctx.data / "train",
            verify=ctx.data / "test",
        ),
        progress=ctx.progress,
    )
    rows = []
    for row in summary.rows:
        check = row.verification
        rows.append(
            ConvertRow(
                model=row.title,
                format=row.format,
                size_mb=round(row.size_mb, 2),
                size_ratio=round(row.size_ratio, 2),
                agreement=check.agreement if check else None,
                max_abs_dp=check.max_abs_dp if check else None,
                accuracy=check.accuracy if check else None,
                latency_ms=check.latency_ms if check else None,
                min_runtime=row.min_runtime,
                loads_in=row.loads_in,
                status="passed" if row.passed else "failed: " + "; ".join(row.problems),
            )
        )
    return ConvertOutput(
        rows=rows,
        seconds=round(summary.seconds, 1),
        manifest=str(summary.manifest),
        timing=summary.timing.describe() if summary.timing else "",
    )


def pick_test_images(ctx: DemoContext, count: int) -> list[tuple[Path, str]]:
    """Balanced test images with their true labels, in a fixed order."""
    from hemiface.synth.dataset import read_labels

    rows = [r for r in read_labels(ctx.data) if r.split == "test"]
    by_label: dict[str, list[Path]] = {}
    for row in rows:
        by_label.setdefault(row.label, []).append(ctx.data / row.file)
    picked: list[tuple[Path, str]] = []
    for i in range(count):
        label = LABELS[i % 2]
        files = by_label.get(label, [])
        if i // 2 < len(files):
            picked.append((files[i // 2], label))
    return picked


def stage_runtime(ctx: DemoContext) -> RuntimeOutput:
    import cv2

    from hemiface.benchmarks.face_detection import (
        available_detectors,
        detection_by_size_and_tone,
    )
    from hemiface.runtime.backends import physical_cores
    from hemiface.runtime.batch import predict_files
    from hemiface.runtime.detectors import open_detector
    from hemiface.runtime.live import MAX_LANES
    from hemiface.runtime.modelset import load_model_set
    from hemiface.runtime.overlay import draw_figure
    from hemiface.runtime.pipeline import StreamSettings, run_stream
    from hemiface.runtime.sources import VideoFileSource
    from hemiface.synth.video import label_accuracy, write_face_video

    folder = ctx.out / "runtime"
    folder.mkdir(parents=True, exist_ok=True)
    model_set = load_model_set(ctx.modelset)
    samples = pick_test_images(ctx, SAMPLE_IMAGES)
    lines, figures, correct = [], [], 0
    results = list(predict_files([p for p, _ in samples], model_set, keep_images=True))
    for index, (result, (_, truth)) in enumerate(zip(results, samples, strict=True)):
        ctx.progress("predicting images", index + 1, len(samples))
        lines.append(json.dumps({**result.to_json(), "truth": truth}))
        if result.prediction is None or result.image is None:
            continue
        correct += result.prediction.label == truth
        figure = draw_figure(result.image, result.prediction)
        path = folder / f"predict_{index}_{truth}.png"
        cv2.imwrite(str(path), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR))
        figures.append(str(path))
    (folder / "predictions.jsonl").write_text("\n".join(lines) + "\n")

    video = folder / "camera_stand_in.mp4"
    video_truth = write_face_video(video, VIDEO_SECONDS, VIDEO_FPS, seed=VIDEO_SEED)
    frames: list[dict[str, Any]] = []

    def on_result(result: Any) -> None:
        frames.append(result.to_json())
        ctx.progress("live loop on the video", len(frames), len(video_truth))

    def open_lane() -> tuple[Any, Any]:
        return load_model_set(ctx.modelset), open_detector(ctx.modelset)

    detector = open_detector(ctx.modelset)  # BlazeFace when the set carries it, else Haar
    # As `hemiface run` does by default here: one frame a core, side by side.
    lanes = max(1, min(physical_cores(), MAX_LANES))
    settings = StreamSettings(crop="face", record=folder / "annotated.mp4", lanes=lanes)
    stats = run_stream(
        VideoFileSource(video),
        model_set,
        settings,
        on_result=on_result,
        detector=detector,
        open_lane=open_lane,
    )
    (folder / "stream.jsonl").write_text("\n".join(json.dumps(f) for f in frames) + "\n")
    predicted = [f["ensemble"]["label"] if f.get("ensemble") else None for f in frames]
    per_model = {
        entry.title: label_accuracy(
            video_truth,
            [f["models"][entry.name]["label"] if f.get("models") else None for f in frames],
        )
        for entry in model_set.entries
    }
    shown = {n: d for n, d in available_detectors(ctx.modelset).items() if n in DETECTOR_NAMES}
    finds = detection_by_size_and_tone(DETECTOR_FACES, detectors=shown)
    return RuntimeOutput(
        format=model_set.format,
        format_reason=model_set.format_reason,
        images=len(samples),
        image_accuracy=correct / len(samples) if samples else None,
        figures=figures,
        video=str(video),
        recording=str(stats.record),
        frames=stats.frames,
        frames_with_prediction=stats.predicted,
        no_face_frames=stats.no_face,
        fps=round(stats.fps, 1),
        video_accuracy=label_accuracy(video_truth, predicted),
        video_accuracy_by_model=per_model,
        stage_ms={k: round(v, 2) for k, v in stats.stage_ms.items()},
        face_detector=detector.name,
        face_detection=finds,
    )


def stage_explain(ctx: DemoContext) -> ExplainOutput:
    from hemiface.explain.api import ExplainSession, ExplainSettings, explain_image

    output = ExplainOutput()
    session = ExplainSession()  # load and trace each model once for both images
    images = pick_test_images(ctx, 2)
    for index, (image, truth) in enumerate(images):
        folder = ctx.out / "explain" / truth.lower()
        ctx.progress(f"explaining a {truth} test image", index, len(images))
        report = explain_image(
            image, ctx.models, folder, ExplainSettings(steps="auto"), session=session
        )
        output.images[truth] = ExplainedImage(
            image=str(image),
            figure=report.files.get("comparison"),
            json=report.files.get("json"),
            models=[
                ExplainedModel(
                    model=m.title,
                    p_right=round(m.p_right, 4),
                    predicted=m.predicted,
                    explained=m.explained,
                    completeness_error=m.completeness_error,
                    steps=m.steps,
                    laterality=m.laterality.get("points_to_patient_side"),
                    mask_ratio=(m.mask or {}).get("ratio_to_area_share"),
                )
                for m in report.models
            ],
            seconds=report.seconds,
        )
    return output


def stage_bench(ctx: DemoContext) -> BenchOutput:
    from hemiface.benchmarks.bench import demo_config, run_bench
    from hemiface.benchmarks.output import write_outputs

    folder = ctx.out / "bench"
    # The demo's profile: the same questions as `hemiface bench`, in about a minute.
    config = demo_config(ctx.modelset, folder, ctx.models, ctx.data / "test")
    results = run_bench(config, step=lambda what: ctx.progress(what, 0, 0))
    files = write_outputs(results.to_json(), folder)
    return BenchOutput(files=[str(f) for f in files], report=str(folder / "report.md"))
