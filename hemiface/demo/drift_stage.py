"""The demo's "does quantisation change where the models look?" stage and its section.

Occlusion maps of the converted artifacts, every format of the model set, TF-free: the two
test images the explain stage explained (side by side with that stage's Keras IG maps when
it ran), then a drift table over more test images (medians and worst cases).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.demo.context import DemoContext
from hemiface.demo.results import StageOutput
from hemiface.report import Document, Figure, FileList, Heading, Paragraph, Table

# Faces in the drift table; occlusion there uses 16-px windows at a 16-px stride (a quarter
# of the single images' cost) so that every format of every face fits in about half a minute.
DRIFT_FACES, QUICK_DRIFT_FACES = 10, 4
TABLE_STRIDE = 16


@dataclass
class DriftImage:
    image: str
    figure: str
    json: str


@dataclass
class DriftOutput(StageOutput):
    images: dict[str, DriftImage] = field(default_factory=dict)  # true label -> image
    table: str = ""  # drift.md
    table_json: str = ""
    faces: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)  # drift.json's rows


def _ig_maps(ctx: DemoContext, truth: str) -> dict[str, tuple[np.ndarray, str]] | None:
    """The explain stage's Keras IG maps of this image, when that stage wrote them."""
    report = ctx.out / "explain" / truth.lower() / "explain.json"
    if not report.is_file():
        return None
    maps = {}
    for model in json.loads(report.read_text()).get("models", []):
        npy = Path(model.get("files", {}).get("attributions", ""))
        if npy.is_file():
            maps[model["name"]] = (np.load(npy), model["explained"])
    return maps or None


def stage_drift(ctx: DemoContext) -> DriftOutput:
    from hemiface.demo.stages import pick_test_images
    from hemiface.explain.artifact_explain import ArtifactExplainSettings
    from hemiface.explain.artifact_folder import explain_folder
    from hemiface.explain.artifact_report import explain_artifacts
    from hemiface.explain.occlusion import OcclusionSettings

    output = DriftOutput()
    # The logit, not the probability: a confident model's P(Right) sits at 0 or 1 whatever
    # a window hides (and a full-int8 output has only 256 levels), so a probability map
    # of a clear face is flat; the logit still says where the evidence is.
    settings = ArtifactExplainSettings(method="occlusion", score="logit")
    for index, (image, truth) in enumerate(pick_test_images(ctx, 2)):
        ctx.progress(f"occlusion of a {truth} test image, every format", index, 2)
        folder = ctx.out / "drift" / truth.lower()
        report = explain_artifacts(
            image, ctx.modelset, folder, settings, ig_maps=_ig_maps(ctx, truth)
        )
        output.images[truth] = DriftImage(str(image), report.files["figure"], report.files["json"])
    faces = QUICK_DRIFT_FACES if ctx.quick else DRIFT_FACES
    table_settings = ArtifactExplainSettings(
        method="occlusion", occlusion=OcclusionSettings(stride=TABLE_STRIDE), score="logit"
    )
    folder_report = explain_folder(
        ctx.data / "test", ctx.modelset, ctx.out / "drift", table_settings, limit=faces,
        progress=lambda done, total: ctx.progress("drift over test faces", done, total),
    )  # fmt: skip
    output.table = folder_report.files["markdown"]
    output.table_json = folder_report.files["json"]
    output.faces = folder_report.faces
    output.rows = [
        {
            "model": row.title,
            "format": row.format,
            "mask_ratio_median": row.mask_ratio["median"],
            "faces_2x": row.mask_ratio_goal_share,
            "rho_vs_reference_median": row.spearman_vs_reference["median"],
            "rho_vs_reference_worst": row.spearman_vs_reference["worst"],
            "iou_vs_reference_median": row.top10_iou_vs_reference["median"],
        }
        for row in folder_report.rows
    ]
    return output


def _fmt(value: Any, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def drift_section(doc: Document, out: Path, result: Any) -> None:
    """Section 6 of the walk-through (`result` is the stage's StageResult)."""
    del out
    doc.add(Heading("6. Does quantisation change where the models look?"))
    if result.status != "ok":
        doc.add(Paragraph(f"Drift: {result.status} {result.detail}"))
        return
    drift = result.output(DriftOutput)
    doc.add(
        Paragraph(
            "Occlusion sensitivity of the TFLite artifacts themselves (what the device runs), "
            "computed without TensorFlow: a 16-px black window slides over the image and the "
            "map shows how far each place lowers the explained class's logit (the "
            "probability of a clear face sits at 0 or 1 whatever one window hides, and a "
            "full-int8 output has only 256 levels, so probability maps would be flat). Each "
            "format's map is compared with the float32 artifact's (rank correlation, overlap "
            "of the top-10 % regions) and with the Keras IG map of section 4."
        )
    )
    for truth, item in drift.images.items():
        doc.add(Figure(Path(item.figure), f"The {truth} test image: each format's map"))
    rows = [
        [
            r["model"],
            r["format"],
            _fmt(r["mask_ratio_median"], 1),
            "n/a" if r["faces_2x"] is None else f"{100 * r['faces_2x']:.0f} %",
            f"{_fmt(r['rho_vs_reference_median'])} ({_fmt(r['rho_vs_reference_worst'])})",
            _fmt(r["iou_vs_reference_median"]),
        ]
        for r in drift.rows
    ]
    doc.add(
        Paragraph(f"Over {drift.faces} test faces (windows at a 16-px stride), medians:"),
        Table(
            [
                "model",
                "format",
                "mask ratio",
                "faces >= 2x",
                "rho vs float32 (worst)",
                "top-10 % IoU vs float32",
            ],
            rows,
        ),  # fmt: skip
        FileList([("drift table", Path(drift.table)), ("every figure", Path(drift.table_json))]),
    )
