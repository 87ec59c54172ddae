"""The demo's walk-through, OUT/index.md and OUT/index.html, from the stage results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from hemiface.demo import StageResult

NOTICE = (
    "hemiface is a research and teaching tool, not a medical device. Everything here runs "
    "on synthetic faces and models trained on them; nothing says anything about a real "
    "person."
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
    outputs = result.outputs
    backbone = outputs.get("backbone", {})
    doc.add(
        Paragraph(
            f"Where they came from: {outputs.get('origin')}. Recipe '{outputs.get('recipe')}', "
            f"rebuilt by `{outputs.get('command')}`. The two MobileNetV2 models share one "
            f"backbone, pretrained from scratch on {backbone.get('images_seen')} synthetic "
            f"faces ({backbone.get('steps')} steps, {_fmt(backbone.get('train_time_s'), 0)} s) "
            "as a stand-in for ImageNet weights: Base keeps it frozen under a new head, "
            "Fine-tuned also trains its upper block, so the layers below the cut are "
            "bit-identical in the two files. None of the demo's faces (seed 0) was used in "
            "training."
        ),
        Table(
            ["model", "accuracy", "ROC AUC", "flip consistency"],
            [
                [
                    name,
                    _fmt(m.get("accuracy")),
                    _fmt(m.get("roc_auc")),
                    _fmt(m.get("flip_consistency")),
                ]
                for name, m in outputs.get("heldout", {}).items()
            ],
        ),
        Paragraph(
            f"Held-out test set: {outputs.get('heldout_images')} faces drawn with seed "
            f"{outputs.get('heldout_seed')}, which no training step used."
        ),
    )
    folder = Path(outputs.get("folder", out / "models"))
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
            r["model"],
            r["format"],
            _fmt(r["size_mb"], 2),
            _fmt(r.get("size_ratio"), 2),
            _fmt(r["agreement"]),
            _fmt(r["max_abs_dp"], 4),
            _fmt(r.get("accuracy")),
            _fmt(r.get("latency_ms"), 2),
            r.get("min_runtime", ""),
            r["status"],
        ]
        for r in result.outputs.get("rows", [])
    ]
    header = ["model", "format", "MB", "x source", "label agreement", "max abs dp", "accuracy"]
    header += ["ms (1 invoke)", "needs runtime", "status"]
    doc.add(
        Table(header, rows),
        FileList([("manifest", out / "modelset" / "hemiface.json")]),
    )


def _runtime(doc: Document, out: Path, result: StageResult) -> None:
    doc.add(Heading("3. The TF-free runtime on test images and a video"))
    if result.status != "ok":
        doc.add(Paragraph(f"Runtime: {result.status} {result.detail}"))
        return
    o = result.outputs
    doc.add(
        Paragraph(
            f"Format used: {o.get('format')} ({o.get('format_reason')}). Test images: "
            f"{o.get('images')}, ensemble accuracy {_fmt(o.get('image_accuracy'))}. "
            f"Video (a stand-in for a camera, one synthetic person with droop on one side, "
            f"then mirrored): {o.get('frames')} frames, {o.get('frames_with_prediction')} "
            f"with a face and a prediction, {_fmt(o.get('fps'), 1)} FPS, ensemble frame "
            f"accuracy {_fmt(o.get('video_accuracy'))}; by model: "
            + ", ".join(
                f"{k} {_fmt(v)}" for k, v in (o.get("video_accuracy_by_model") or {}).items()
            )
            + "."
        )
    )
    bands = o.get("face_detection_by_skin_tone") or []
    if bands:
        # Earlier runs recorded the Haar cascade alone, as "detected".
        found = [b.get("found") or {"haar": b.get("detected", 0)} for b in bands]
        names = list(found[0])
        doc.add(
            Paragraph(
                f"The live runtime crops the face before the models see it (here with "
                f"{o.get('face_detector', 'haar')}); a missed face gets no prediction. Measured "
                "on synthetic faces at webcam scale, by skin-luminance quartile, OpenCV's Haar "
                "cascade misses darker skin far more often; BlazeFace, which the model set "
                "carries, is the default where the set has it. Do not read a missing "
                "prediction as a negative."
            ),
            Table(
                ["skin luminance (0-255)", "faces", *(f"found by {n}" for n in names)],
                [
                    [
                        f"{b['luminance_low']:.0f}-{b['luminance_high']:.0f}",
                        str(b["faces"]),
                        *(f"{hits[n]} ({hits[n] / b['faces']:.0%})" for n in names),
                    ]
                    for b, hits in zip(bands, found, strict=True)
                ],
            ),
        )
    for path in o.get("figures", [])[:2]:
        doc.add(Figure(Path(path), "Notebook-style comparison of the three models (runtime)"))
    doc.add(
        FileList(
            [
                ("per-image predictions (JSON lines)", out / "runtime" / "predictions.jsonl"),
                ("video stand-in", Path(o.get("video", ""))),
                ("annotated recording", Path(o.get("recording", ""))),
                ("per-frame results (JSON lines)", out / "runtime" / "stream.jsonl"),
            ]
        )
    )


def _explain(doc: Document, out: Path, result: StageResult) -> None:
    doc.add(Heading("4. Integrated Gradients, three models side by side"))
    if result.status != "ok":
        doc.add(Paragraph(f"Explain: {result.status} {result.detail}"))
        return
    for truth, item in result.outputs.items():
        if item.get("figure"):
            doc.add(Figure(Path(item["figure"]), f"A test image whose true label is {truth}"))
        rows = [
            [
                m["model"],
                _fmt(m["p_right"]),
                m["predicted"],
                m["explained"],
                _fmt(m["completeness_error"], 4),
                str(m.get("steps", "")),
                _fmt(m["laterality"]),
                _fmt(m["mask_ratio"], 2),
            ]
            for m in item.get("models", [])
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
        if item.get("json"):
            doc.add(FileList([("all figures of trust", Path(item["json"]))]))


def _bench(doc: Document, out: Path, result: StageResult) -> None:
    doc.add(Heading("5. Latency and agreement"))
    if result.status != "ok":
        doc.add(Paragraph(f"Bench: {result.status} {result.detail}"))
        return
    folder = out / "bench"
    results_json = folder / "results.json"
    if results_json.is_file():
        from hemiface.benchmarks.bench import headline

        doc.add(
            Paragraph(
                "Ratios measured in this one run (medians; the machine may be shared and "
                "noisy, so compare ratios, not absolute times):"
            ),
            Bullets(headline(json.loads(results_json.read_text()))),
        )
    for png in sorted(folder.glob("*.png")):
        doc.add(Figure(png, png.stem.replace("_", " ")))
    doc.add(FileList([("full report", folder / "report.md"), ("every figure", results_json)]))


def write_index(out: Path, results: dict[str, StageResult], quick: bool) -> tuple[Path, Path]:
    title = "hemiface demo" + (" (quick)" if quick else "")
    doc = Document(title)
    doc.add(Paragraph(NOTICE), Paragraph(CONVENTION))
    _stages(doc, results)
    sections = (
        ("train", _train),
        ("convert", _convert),
        ("runtime", _runtime),
        ("explain", _explain),
        ("bench", _bench),
    )
    for name, render in sections:
        if name in results:
            try:
                render(doc, out, results[name])
            except Exception as exc:  # noqa: BLE001 - a broken section must not lose the page
                doc.add(Paragraph(f"(could not render the {name} section: {exc})"))
    return write_document(doc, out)
