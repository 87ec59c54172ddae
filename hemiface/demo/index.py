"""The demo's walk-through, OUT/index.md and OUT/index.html, from the stages' typed records."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hemiface.benchmarks.detector_records import FaceFinds
from hemiface.core.domain import NOTICE
from hemiface.demo.drift_stage import drift_section
from hemiface.demo.results import (
    BenchOutput,
    ConvertOutput,
    ExplainOutput,
    RuntimeOutput,
    TrainOutput,
)
from hemiface.demo.runner import StageResult
from hemiface.report import (
    Bullets,
    Document,
    Figure,
    FileList,
    Heading,
    Paragraph,
    Table,
    write_document,
)

SYNTHETIC_NOTE = (
    "Everything here runs on synthetic faces and models trained on them; nothing says "
    "anything about a real person."
)
CONVENTION = (
    "Labels name the patient's affected side. In an unmirrored image the patient's left is "
    "on the image's right; the models always see the unmirrored frame."
)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _stages(doc: Document, results: dict[str, StageResult]) -> None:
    doc.add(
        Heading("Stages"),
        Table(
            ["stage", "status", "seconds", "detail"],
            [[r.name, r.status, f"{r.seconds:.1f}", r.detail or ""] for r in results.values()],
        ),
    )


def _train(doc: Document, out: Path, result: StageResult) -> None:
    doc.add(Heading("1. Data and the three reference models"))
    data = out / "data"
    doc.add(
        Paragraph(
            "Procedural faces with droop on one side (hemiface synth), in the Keras folder "
            f"layout under {data.name}/, with labels.csv and a lesion mask per image. "
            "The three models have the users' architectures and file formats: "
            "mobilenetv2_base_model.h5, mobilenetv2_finetuned_model.h5, cnn_stroke_model.keras."
        )
    )
    if result.status != "ok":
        doc.add(Paragraph(f"The models are not available: {result.detail}"))
        return
    outputs = result.output(TrainOutput)
    backbone = outputs.backbone
    doc.add(
        Paragraph(
            f"Where they came from: {outputs.origin}. Recipe '{outputs.recipe}', "
            f"rebuilt by `{outputs.command}`. The two MobileNetV2 models share one "
            f"backbone, pretrained from scratch on {backbone.images_seen} synthetic "
            f"faces ({backbone.steps} steps, {_fmt(backbone.train_time_s, 0)} s) "
            "as a stand-in for ImageNet weights: Base keeps it frozen under a new head, "
            "Fine-tuned also trains its upper block, so the layers below the cut are "
            "bit-identical in the two files. None of the demo's faces (seed 0) was used in "
            "training."
        ),
        Table(
            ["model", "accuracy", "ROC AUC", "flip consistency"],
            [
                [name, _fmt(m.accuracy), _fmt(m.roc_auc), _fmt(m.flip_consistency)]
                for name, m in outputs.heldout.items()
            ],
        ),
        Paragraph(
            f"Held-out test set: {outputs.heldout_images} faces drawn with seed "
            f"{outputs.heldout_seed}, which no training step used."
        ),
    )
    folder = Path(outputs.folder)
    doc.add(
        FileList(
            [
                ("training report", folder / "training_report.md"),
                ("held-out report", folder / "heldout_report.json"),
            ]
        )
    )


def _convert(doc: Document, out: Path, result: StageResult) -> None:
    doc.add(Heading("2. TensorFlow Lite conversion, verified against Keras"))
    if result.status != "ok":
        doc.add(Paragraph(f"Conversion: {result.status} {result.detail}"))
        return
    rows = [
        [
            r.model,
            r.format,
            _fmt(r.size_mb, 2),
            _fmt(r.size_ratio, 2),
            _fmt(r.agreement),
            _fmt(r.max_abs_dp, 4),
            _fmt(r.accuracy),
            _fmt(r.latency_ms, 2),
            r.min_runtime,
            r.status,
        ]
        for r in result.output(ConvertOutput).rows
    ]
    header = ["model", "format", "MB", "x source", "label agreement", "max abs dp", "accuracy"]
    header += ["ms (1 invoke)", "needs runtime", "status"]
    timing = result.output(ConvertOutput).timing
    doc.add(Table(header, rows))
    if timing:
        doc.add(Paragraph(f"Where convert's time went: {timing}."))
    doc.add(FileList([("manifest", out / "modelset" / "hemiface.json")]))


def _runtime(doc: Document, out: Path, result: StageResult) -> None:
    doc.add(Heading("3. The TF-free runtime on test images and a video"))
    if result.status != "ok":
        doc.add(Paragraph(f"Runtime: {result.status} {result.detail}"))
        return
    o = result.output(RuntimeOutput)
    doc.add(
        Paragraph(
            f"Format used: {o.format} ({o.format_reason}). Test images: "
            f"{o.images}, ensemble accuracy {_fmt(o.image_accuracy)}. "
            f"Video (a stand-in for a camera, one synthetic person with droop on one side, "
            f"then mirrored): {o.frames} frames, {o.frames_with_prediction} "
            f"with a face and a prediction, {_fmt(o.fps, 1)} FPS, ensemble frame "
            f"accuracy {_fmt(o.video_accuracy)}; by model: "
            + ", ".join(f"{k} {_fmt(v)}" for k, v in o.video_accuracy_by_model.items())
            + "."
        )
    )
    if o.face_detection is not None:
        _detector_tables(doc, o.face_detection, o.face_detector)
    for path in o.figures[:2]:
        doc.add(Figure(Path(path), "Notebook-style comparison of the three models (runtime)"))
    doc.add(
        FileList(
            [
                ("per-image predictions (JSON lines)", out / "runtime" / "predictions.jsonl"),
                ("video stand-in", Path(o.video)),
                ("annotated recording", Path(o.recording)),
                ("per-frame results (JSON lines)", out / "runtime" / "stream.jsonl"),
            ]
        )
    )


def _detector_tables(doc: Document, finds: FaceFinds, detector: str) -> None:
    """Faces found by each detector, by skin-tone quartile and by face size."""
    names = finds.detectors

    def found(counts: dict[str, int], faces: int) -> list[str]:
        return [f"{counts[n]} ({counts[n] / faces:.0%})" for n in names]

    width, height = finds.frame_size
    doc.add(
        Paragraph(
            f"The live runtime crops the face before the models see it (here with "
            f"{detector}); a missed face gets no prediction. Measured on {finds.faces} "
            f"synthetic faces at a random place in {width}x{height} scenes, by skin-luminance "
            "quartile and by face size (a face counts as found when the detected box's centre "
            "lies on it): OpenCV's Haar cascade misses darker skin and small faces far more "
            "often. blazeface is the default search over the two BlazeFace models the set "
            "carries: the short-range model on the whole frame, and only when it finds "
            "nothing the full-range model, on the whole frame and then on overlapping tiles "
            "(runtime/face_search.py). Do not read a missing prediction as a negative."
        ),
        Table(
            ["skin luminance (0-255)", "faces", *(f"found by {n}" for n in names)],
            [
                [f"{b.luminance_low:.0f}-{b.luminance_high:.0f}", str(b.faces)]
                + found(b.found, b.faces)
                for b in finds.skin_tone_bands
            ],
        ),
        Table(
            ["face-box height (px)", "faces", *(f"found by {n}" for n in names)],
            [
                [f"{b.height_low}-{b.height_high}", str(b.faces)] + found(b.found, b.faces)
                for b in finds.size_bands
                if b.faces
            ],
        ),
    )


def _explain(doc: Document, out: Path, result: StageResult) -> None:
    doc.add(Heading("4. Integrated Gradients, three models side by side"))
    if result.status != "ok":
        doc.add(Paragraph(f"Explain: {result.status} {result.detail}"))
        return
    for truth, item in result.output(ExplainOutput).images.items():
        if item.figure:
            doc.add(Figure(Path(item.figure), f"A test image whose true label is {truth}"))
        rows = [
            [
                m.model,
                _fmt(m.p_right),
                m.predicted,
                m.explained,
                _fmt(m.completeness_error, 4),
                str(m.steps),
                _fmt(m.laterality),
                _fmt(m.mask_ratio, 2),
            ]
            for m in item.models
        ]
        doc.add(
            Table(
                [
                    "model",
                    "P(Right)",
                    "predicted",
                    "explained",
                    "completeness error",
                    "steps (auto)",
                    "attribution points to",
                    "mask ratio",
                ],
                rows,
            )
        )
        if item.json:
            doc.add(FileList([("all figures of trust", Path(item.json))]))


def _bench(doc: Document, out: Path, result: StageResult) -> None:
    doc.add(Heading("5. Latency and agreement"))
    if result.status != "ok":
        doc.add(Paragraph(f"Bench: {result.status} {result.detail}"))
        return
    bench = result.output(BenchOutput)
    folder = Path(bench.report).parent
    results_json = folder / "results.json"
    if results_json.is_file():
        from hemiface.benchmarks.sections import BenchResults

        run = BenchResults.from_json(json.loads(results_json.read_text()))
        doc.add(
            Paragraph(
                "Ratios measured in this one run (medians; the machine may be shared and "
                "noisy, so compare ratios, not absolute times):"
            ),
            Bullets(run.headline),
        )
    for png in sorted(folder.glob("*.png")):
        doc.add(Figure(png, png.stem.replace("_", " ")))
    doc.add(FileList([("full report", Path(bench.report)), ("every figure", results_json)]))


Section = Callable[[Document, Path, StageResult], None]
SECTIONS: tuple[tuple[str, Section], ...] = (
    ("train", _train),
    ("convert", _convert),
    ("runtime", _runtime),
    ("explain", _explain),
    ("bench", _bench),
    ("drift", drift_section),
)


def write_index(out: Path, results: dict[str, StageResult], quick: bool) -> tuple[Path, Path]:
    title = "hemiface demo" + (" (quick)" if quick else "")
    doc = Document(title)
    doc.add(Paragraph(f"{NOTICE} {SYNTHETIC_NOTE}"), Paragraph(CONVENTION))
    _stages(doc, results)
    for name, render in SECTIONS:
        if name in results:
            render(doc, out, results[name])
    return write_document(doc, out)
