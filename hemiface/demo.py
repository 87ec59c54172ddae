"""`hemiface demo`: the whole toolkit end to end on the built-in synthetic default.

Stages, each cached under the output folder so that a rerun reuses what is done and
valid: data (synthetic faces) -> train (the three reference models: by default the set
this repository ships in reference/, checked against its SHA256SUMS; with --retrain
trained from nothing by a named recipe) -> convert (four TFLite
formats, verified) -> runtime (images and a generated video, headless, recorded) ->
explain (one Left and one Right test image) -> bench (latency and agreement) -> report
(index.md and index.html). A stage that fails is reported; stages that do not depend on
it still run; the exit code says whether all succeeded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from hemiface.runtime.errors import HemifaceError, require_tensorflow

# Data set sizes: the full build follows train/config.py's plan; --quick is a small set
# that still trains all three models to a meaningful level in a few minutes.
FULL_IMAGES = 3000
QUICK_IMAGES = 600
SEED = 0
SAMPLE_IMAGES = 6  # test images run through `predict` and drawn notebook-style
VIDEO_SECONDS, VIDEO_FPS = 6.0, 15.0
# The video's person: seed 1 is a face the Haar cascade finds. Darker synthetic faces are
# often missed (the runtime stage measures it by skin tone and the walk-through says so).
VIDEO_SEED = 1
SKIN_TONE_FACES = 200

StageProgress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass
class StageResult:
    name: str
    status: str = "pending"  # ok | failed | skipped
    seconds: float = 0.0
    detail: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)


def shipped_reference() -> Path:
    """The reference set in this repository's reference/ folder (next to the package
    folders in a clone or an editable install); HEMIFACE_REFERENCE overrides."""
    override = os.environ.get("HEMIFACE_REFERENCE")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "reference"


@dataclass
class DemoContext:
    out: Path
    quick: bool
    progress: StageProgress
    retrain: bool = False
    reference: Path = field(default_factory=shipped_reference)
    results: dict[str, StageResult] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.out / "data"

    @property
    def models(self) -> Path:
        return self.out / "models" if self.retrain else self.reference

    @property
    def modelset(self) -> Path:
        return self.out / "modelset"


def _stage_data(ctx: DemoContext) -> dict[str, Any]:
    from hemiface.synth.dataset import LABELS_CSV, generate_dataset, read_labels

    count = QUICK_IMAGES if ctx.quick else FULL_IMAGES
    if (ctx.data / LABELS_CSV).is_file():
        rows = read_labels(ctx.data)
        if len(rows) == count:
            return {"images": len(rows), "cached": True, "folder": str(ctx.data)}
    summary = generate_dataset(
        ctx.data,
        count,
        seed=SEED,
        overwrite=True,
        progress=lambda done: ctx.progress("rendering faces", done, count),
    )
    return {
        "images": summary.count,
        "images_per_s": round(summary.images_per_s, 1),
        "seconds": round(summary.wall_time_s, 1),
        "folder": str(ctx.data),
    }


def _stage_train(ctx: DemoContext) -> dict[str, Any]:
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
        origin = f"the reference set shipped in {folder} (sha256 checked)"
    heldout = summary["heldout"]
    return {
        "origin": origin,
        "recipe": summary["recipe"],
        "command": summary["command"],
        "backbone": summary["backbone"],
        "heldout_seed": heldout["seed"],
        "heldout_images": heldout["images"],
        "heldout": {
            name: {k: m[k] for k in ("accuracy", "roc_auc", "flip_consistency")}
            for name, m in heldout["models"].items()
        },
        "wall_time_s": summary["wall_time_s"],
        "folder": str(ctx.models),
    }


def _keras_files(ctx: DemoContext) -> list[Path]:
    from hemiface.core.domain import MODEL_FILES

    return [ctx.models / file for file in MODEL_FILES.values()]


def _stage_convert(ctx: DemoContext) -> dict[str, Any]:
    from hemiface.convert.pipeline import convert_models

    summary = convert_models(
        _keras_files(ctx),
        ctx.modelset,
        calib=ctx.data / "train",
        verify=ctx.data / "test",
        progress=ctx.progress,
    )
    rows = []
    for row in summary.rows:
        check = row.verification
        rows.append(
            {
                "model": row.title,
                "format": row.format,
                "size_mb": round(row.size_mb, 2),
                "size_ratio": round(row.size_ratio, 2),
                "agreement": check.agreement if check else None,
                "max_abs_dp": check.max_abs_dp if check else None,
                "accuracy": check.accuracy if check else None,
                "latency_ms": check.latency_ms if check else None,
                "min_runtime": row.min_runtime,
                "loads_in": row.loads_in,
                "status": "passed" if row.passed else "failed: " + "; ".join(row.problems),
            }
        )
    return {"rows": rows, "seconds": round(summary.seconds, 1), "manifest": str(summary.manifest)}


def _test_images(ctx: DemoContext, count: int) -> list[tuple[Path, str]]:
    """Balanced test images with their true labels, in a fixed order."""
    from hemiface.synth.dataset import read_labels

    rows = [r for r in read_labels(ctx.data) if r.split == "test"]
    by_label: dict[str, list[Path]] = {}
    for row in rows:
        by_label.setdefault(row.label, []).append(ctx.data / row.file)
    picked: list[tuple[Path, str]] = []
    for i in range(count):
        label = ("Left", "Right")[i % 2]
        files = by_label.get(label, [])
        if i // 2 < len(files):
            picked.append((files[i // 2], label))
    return picked


def _stage_runtime(ctx: DemoContext) -> dict[str, Any]:
    import cv2

    from hemiface.benchmarks.face_detection import available_detectors, detection_by_skin_tone
    from hemiface.runtime.batch import predict_files
    from hemiface.runtime.detectors import open_detector
    from hemiface.runtime.modelset import load_model_set
    from hemiface.runtime.overlay import draw_figure
    from hemiface.runtime.pipeline import StreamSettings, run_stream
    from hemiface.runtime.sources import VideoFileSource
    from hemiface.synth.video import label_accuracy, write_face_video

    folder = ctx.out / "runtime"
    folder.mkdir(parents=True, exist_ok=True)
    model_set = load_model_set(ctx.modelset)
    samples = _test_images(ctx, SAMPLE_IMAGES)
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
    truth = write_face_video(video, VIDEO_SECONDS, VIDEO_FPS, seed=VIDEO_SEED)
    frames: list[dict[str, Any]] = []

    def on_result(result: Any) -> None:
        frames.append(result.to_json())
        ctx.progress("live loop on the video", len(frames), len(truth))

    detector = open_detector(ctx.modelset)  # BlazeFace when the set carries it, else Haar
    settings = StreamSettings(crop="face", record=folder / "annotated.mp4")
    stats = run_stream(
        VideoFileSource(video), model_set, settings, on_result=on_result, detector=detector
    )
    (folder / "stream.jsonl").write_text("\n".join(json.dumps(f) for f in frames) + "\n")
    predicted = [f["ensemble"]["label"] if f.get("ensemble") else None for f in frames]
    per_model = {
        entry.title: label_accuracy(
            truth, [f["models"][entry.name]["label"] if f.get("models") else None for f in frames]
        )
        for entry in model_set.entries
    }
    return {
        "format": model_set.format,
        "format_reason": model_set.format_reason,
        "images": len(samples),
        "image_accuracy": correct / len(samples) if samples else None,
        "figures": figures,
        "video": str(video),
        "recording": str(stats.record),
        "frames": stats.frames,
        "frames_with_prediction": stats.predicted,
        "no_face_frames": stats.no_face,
        "fps": round(stats.fps, 1),
        "video_accuracy": label_accuracy(truth, predicted),
        "video_accuracy_by_model": per_model,
        "stage_ms": {k: round(v, 2) for k, v in stats.stage_ms.items()},
        "face_detector": detector.name,
        "face_detection_by_skin_tone": [
            band.to_json()
            for band in detection_by_skin_tone(
                SKIN_TONE_FACES, detectors=available_detectors(ctx.modelset)
            )
        ],
    }


def _stage_explain(ctx: DemoContext) -> dict[str, Any]:
    from hemiface.explain.api import ExplainSession, ExplainSettings, explain_image

    outputs: dict[str, Any] = {}
    session = ExplainSession()  # load and trace each model once for both images
    images = _test_images(ctx, 2)
    for index, (image, truth) in enumerate(images):
        folder = ctx.out / "explain" / truth.lower()
        ctx.progress(f"explaining a {truth} test image", index, len(images))
        report = explain_image(
            image, ctx.models, folder, ExplainSettings(steps="auto"), session=session
        )
        outputs[truth] = {
            "image": str(image),
            "figure": report.files.get("comparison"),
            "json": report.files.get("json"),
            "models": [
                {
                    "model": m.title,
                    "p_right": round(m.p_right, 4),
                    "predicted": m.predicted,
                    "explained": m.explained,
                    "completeness_error": m.completeness_error,
                    "steps": m.steps,
                    "laterality": m.laterality.get("points_to_patient_side"),
                    "mask_ratio": (m.mask or {}).get("ratio_to_area_share"),
                }
                for m in report.models
            ],
            "seconds": report.seconds,
        }
    return outputs


def _stage_bench(ctx: DemoContext) -> dict[str, Any]:
    from hemiface.benchmarks.bench import BenchConfig, quick_timing, run_bench
    from hemiface.benchmarks.output import write_outputs

    folder = ctx.out / "bench"
    config = BenchConfig(
        tflite_dir=ctx.modelset,
        out_dir=folder,
        keras_dir=ctx.models,
        data_dir=ctx.data / "test",
        timing=quick_timing([1]),
        agreement_limit=120,
        pipeline_frames=60,
        quick=True,
        command="hemiface demo (bench stage, quick settings)",
    )
    results = run_bench(config, step=lambda what: ctx.progress(what, 0, 0))
    files = write_outputs(results, folder)
    return {"files": [str(f) for f in files], "report": str(folder / "report.md")}


def _fingerprint(paths: list[Path], extra: str) -> str:
    """What a stage's inputs are: each file's path, size and modification time."""
    digest = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        stat = path.stat() if path.exists() else None
        digest.update(
            f"{path}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}".encode()
        )
    return digest.hexdigest()


def _cache_inputs(ctx: DemoContext, name: str) -> tuple[list[Path], list[Path]] | None:
    """(input files, output files that must still exist) of a stage worth caching."""
    model_files = _keras_files(ctx) if name in ("train", "explain", "bench") else []
    if name == "train":
        if not ctx.retrain:
            return None  # checking the shipped set's checksums is the stage itself
        return [], [*model_files, ctx.models / "heldout_report.json"]
    if name == "explain":
        return [*model_files, ctx.data / "labels.csv"], [
            ctx.out / "explain" / label / "explain.json" for label in ("left", "right")
        ]
    if name == "bench":
        manifest = ctx.modelset / "hemiface.json"
        return [*model_files, manifest], [ctx.out / "bench" / "results.json"]
    return None


def _cached_outputs(ctx: DemoContext, name: str) -> tuple[dict[str, Any] | None, str | None]:
    """(outputs of an earlier run whose inputs are unchanged, fingerprint to record)."""
    files = _cache_inputs(ctx, name)
    if files is None:
        return None, None
    inputs, outputs = files
    fingerprint = _fingerprint(inputs, f"{name}|quick={ctx.quick}|models={ctx.models}")
    record = ctx.out / ".cache" / f"{name}.json"
    try:
        cached = json.loads(record.read_text())
    except (OSError, ValueError):
        return None, fingerprint
    if cached.get("fingerprint") == fingerprint and all(p.exists() for p in outputs):
        return cached.get("outputs"), fingerprint
    return None, fingerprint


def _remember(ctx: DemoContext, name: str, fingerprint: str, outputs: dict[str, Any]) -> None:
    folder = ctx.out / ".cache"
    folder.mkdir(exist_ok=True)
    record = {"fingerprint": fingerprint, "outputs": outputs}
    (folder / f"{name}.json").write_text(json.dumps(record, default=str))


# name, function, the stages whose outputs it needs
STAGES: tuple[tuple[str, Callable[[DemoContext], dict[str, Any]], tuple[str, ...]], ...] = (
    ("data", _stage_data, ()),
    ("train", _stage_train, ("data",)),
    ("convert", _stage_convert, ("data", "train")),
    ("runtime", _stage_runtime, ("data", "convert")),
    ("explain", _stage_explain, ("data", "train")),
    ("bench", _stage_bench, ("data", "train", "convert")),
)


def run_demo(
    out: Path,
    quick: bool,
    progress: StageProgress,
    on_stage: Callable[[StageResult], None] | None = None,
    retrain: bool = False,
) -> dict[str, StageResult]:
    """Run every stage in order; never raises for a stage's failure."""
    ctx = DemoContext(Path(out), quick, progress, retrain=retrain)
    ctx.out.mkdir(parents=True, exist_ok=True)
    for name, function, needs in STAGES:
        result = StageResult(name)
        failed = [n for n in needs if ctx.results[n].status != "ok"]
        if failed:
            result.status, result.detail = "skipped", f"needs {', '.join(failed)}"
        else:
            started = time.perf_counter()
            (ctx.out / f"{name}.error.txt").unlink(missing_ok=True)
            try:
                cached, _ = _cached_outputs(ctx, name)
                if cached is not None:
                    result.outputs, result.detail = cached, "cached: inputs unchanged"
                else:
                    result.outputs = function(ctx)
                    # Fingerprint after the run: train rewrites what later stages read.
                    _, fingerprint = _cached_outputs(ctx, name)
                    if fingerprint is not None:
                        _remember(ctx, name, fingerprint, result.outputs)
                result.status = "ok"
            except HemifaceError as exc:
                result.status, result.detail = "failed", str(exc)
            except Exception as exc:  # noqa: BLE001 - one stage must not stop the others
                result.status = "failed"
                result.detail = f"{type(exc).__name__}: {exc}"
                (ctx.out / f"{name}.error.txt").write_text(traceback.format_exc())
            result.seconds = time.perf_counter() - started
        ctx.results[name] = result
        if on_stage:
            on_stage(result)
    from hemiface.demo_index import write_index

    write_index(ctx.out, ctx.results, quick)
    summary = {n: {"status": r.status, "seconds": round(r.seconds, 1), "detail": r.detail,
                   "outputs": r.outputs} for n, r in ctx.results.items()}  # fmt: skip
    (ctx.out / "demo.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return ctx.results


def demo(
    out: Path = typer.Option(Path("hemiface-demo"), "--out", help="Folder for everything."),
    quick: bool = typer.Option(
        False, "--quick", help="A smaller data set (and, with --retrain, the quick recipe)."
    ),
    retrain: bool = typer.Option(
        False,
        "--retrain",
        help="Train the three models from nothing instead of using the shipped reference "
        "set: the 'reference' recipe (about 1.5 h on 2 cores), or with --quick the 'quick' "
        "recipe (minutes, much weaker models).",
    ),
) -> None:
    """Run the whole toolkit on built-in synthetic faces: data, train, convert, run, explain,
    bench, and a walk-through (OUT/index.md, OUT/index.html)."""
    require_tensorflow("demo")
    from hemiface.kerasio import quiet_tensorflow

    quiet_tensorflow()
    # Keras warns through absl (e.g. "saving as HDF5 is legacy": the users' format, on
    # purpose); our own progress display and summary are what the terminal should show.
    logging.getLogger("absl").setLevel(logging.ERROR)
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console()
    console.print("[bold]hemiface demo[/] - research and teaching tool, not a medical device")
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.fields[stage]:>8}[/]"),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("", total=1, stage="")
        current = {"stage": STAGES[0][0]}

        def progress(what: str, done: int, total: int) -> None:
            bar.update(task, description=escape(what), completed=done, total=max(total, 1),
                       stage=current["stage"])  # fmt: skip

        def on_stage(result: StageResult) -> None:
            colour = {"ok": "green", "failed": "red", "skipped": "yellow"}[result.status]
            detail = f" - {escape(result.detail)}" if result.detail else ""
            bar.console.print(
                f"[{colour}]{result.status:>7}[/] {result.name} ({result.seconds:.1f} s){detail}"
            )
            names = [n for n, _, _ in STAGES]
            index = names.index(result.name)
            if index + 1 < len(names):
                current["stage"] = names[index + 1]

        if retrain:
            recipe = "quick" if quick else "reference"
            length = "a few minutes" if quick else "about 1.5 hours on 2 cores"
            bar.console.print(f"--retrain: the '{recipe}' recipe trains from nothing ({length})")
        results = run_demo(out, quick, progress, on_stage, retrain=retrain)
    failed = [r.name for r in results.values() if r.status != "ok"]
    console.print(
        f"\n{len(results) - len(failed)}/{len(results)} stages succeeded in "
        f"{time.perf_counter() - started:.0f} s. Walk-through: {out / 'index.md'} "
        f"and {out / 'index.html'}",
        markup=False,
    )
    if failed:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command(name="demo")(demo)
