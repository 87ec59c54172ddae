"""Explanation drift over a folder: every model and format on up to N images, as a table of
medians and worst cases (TF-free; Keras IG maps come from the caller when it has them).

Per model and format: the share of faces whose map puts at least MASK_RATIO_GOAL times its
area share of |map| in the lesion mask, the median and worst mask ratio, and the median and
worst rank correlation and top-10 % overlap with the reference format's map (float32) and
with Keras IG. Written as `drift.json` and `drift.md` in `out`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hemiface.core.domain import NOTICE
from hemiface.core.folders import image_files
from hemiface.explain.artifact_explain import (
    ArtifactExplainSettings,
    ModelResult,
    explain_models,
    open_set,
)
from hemiface.explain.artifact_report import choose_formats, ground_truth
from hemiface.explain.drift import summarize
from hemiface.runtime.errors import HemifaceError, ImageError
from hemiface.runtime.images import read_image
from hemiface.runtime.manifest import atomic_write_bytes, load_manifest
from hemiface.runtime.modelset import select_models

MASK_RATIO_GOAL = 2.0
# ig_provider(image path, RGB image) -> {model name: (IG map, class it explains)}
IGProvider = Callable[[Path, np.ndarray], dict[str, tuple[np.ndarray, str]]]
# progress(images done, images in all)
FolderProgress = Callable[[int, int], None]


def pick_images(folder: Path, limit: int | None) -> list[Path]:
    """Image files under `folder`, at most `limit` of them spread evenly over the sorted list
    (so a Left/ and Right/ folder gives both classes)."""
    files = image_files(Path(folder))
    if not files:
        raise HemifaceError(f"{folder}: no images found")
    if limit is None or limit >= len(files):
        return files
    if limit < 1:
        raise HemifaceError(f"--limit must be at least 1, got {limit}")
    picks = np.linspace(0, len(files) - 1, limit).round().astype(int)
    return [files[i] for i in dict.fromkeys(picks.tolist())]


@dataclass
class DriftRow:
    model: str
    title: str
    format: str
    faces: int
    mask_ratio: dict  # summarize(...) of ratio_to_area_share, worst = smallest
    mask_ratio_goal_share: float | None  # share of faces with a ratio >= MASK_RATIO_GOAL
    spearman_vs_reference: dict
    top10_iou_vs_reference: dict
    spearman_vs_ig: dict
    top10_iou_vs_ig: dict
    flips_vs_reference: int  # faces where this format predicts another class


@dataclass
class FolderReport:
    images: str
    model_set: str
    method: str
    formats: list[str]
    reference_format: str
    faces: int
    skipped: list[dict]
    rows: list[DriftRow]
    ig_mask_ratio: dict  # model -> summarize(...) of the IG maps' mask ratios
    settings: dict
    seconds: dict
    files: dict
    notice: str = NOTICE


def _rows(per_image: list[list[ModelResult]], formats: list[str]) -> list[DriftRow]:
    rows = []
    for index, first in enumerate(per_image[0]):
        for position, fmt in enumerate(formats):
            results = [image[index].formats[position] for image in per_image]
            reference = [image[index].formats[0] for image in per_image]
            ratios = [r.mask["ratio_to_area_share"] if r.mask else None for r in results]
            ref = [r.vs_reference or {} for r in results]
            ig = [r.vs_ig or {} for r in results]
            rows.append(
                DriftRow(
                    model=first.name,
                    title=first.title,
                    format=fmt,
                    faces=len(results),
                    mask_ratio=summarize(ratios),
                    # A flat map (the output never moved) has no ratio: it misses the goal.
                    mask_ratio_goal_share=(
                        sum(v is not None and v >= MASK_RATIO_GOAL for v in ratios) / len(ratios)
                        if any(r.mask for r in results)
                        else None
                    ),
                    spearman_vs_reference=summarize([d.get("spearman") for d in ref]),
                    top10_iou_vs_reference=summarize([d.get("top10_iou") for d in ref]),
                    spearman_vs_ig=summarize([d.get("spearman") for d in ig]),
                    top10_iou_vs_ig=summarize([d.get("top10_iou") for d in ig]),
                    flips_vs_reference=sum(
                        r.predicted != f.predicted for r, f in zip(results, reference, strict=True)
                    ),
                )
            )
    return rows


def explain_folder(
    images: Path,
    model_set: Path,
    out: Path,
    settings: ArtifactExplainSettings,
    *,
    formats: list[str] | None = None,
    limit: int | None = None,
    ig_provider: IGProvider | None = None,
    progress: FolderProgress | None = None,
) -> FolderReport:
    """Every model and format of `model_set` on up to `limit` images under `images`."""
    started = time.perf_counter()
    model_set, out = Path(model_set), Path(out)
    files = pick_images(Path(images), limit)
    manifest = load_manifest(model_set, check_files=False)
    names = select_models(manifest, model_set, None)
    chosen = choose_formats(model_set, names, formats)
    opened = open_set(model_set, chosen, names, settings)
    per_image: list[list[ModelResult]] = []
    skipped: list[dict] = []
    ig_ratios: dict[str, list[float | None]] = {n: [] for n in names}
    try:
        spec = opened.formats[opened.reference].spec
        for done, path in enumerate(files, start=1):
            try:
                rgb = read_image(path)
                truth = ground_truth(path, rgb, (spec.height, spec.width))
            except (ImageError, HemifaceError) as exc:
                skipped.append({"image": str(path), "error": str(exc)})
                continue
            ig_maps = ig_provider(path, rgb) if ig_provider is not None else None
            models = explain_models(rgb, opened, settings, truth.mask, truth.midline_x, ig_maps)
            for model in models:
                if model.ig is not None and model.ig["mask"] is not None:
                    ig_ratios[model.name].append(model.ig["mask"]["ratio_to_area_share"])
            per_image.append(models)
            if progress is not None:
                progress(done, len(files))
    finally:
        opened.close()
    if not per_image:
        raise HemifaceError(f"{images}: no image could be explained")
    method_settings = settings.occlusion if settings.method == "occlusion" else settings.rise
    out.mkdir(parents=True, exist_ok=True)
    report = FolderReport(
        images=str(images),
        model_set=str(model_set),
        method=settings.method,
        formats=chosen,
        reference_format=opened.reference,
        faces=len(per_image),
        skipped=skipped,
        rows=_rows(per_image, chosen),
        ig_mask_ratio={n: summarize(v) for n, v in ig_ratios.items() if v},
        settings={**asdict(settings), "method_settings": asdict(method_settings)},
        seconds={"total": round(time.perf_counter() - started, 3)},
        files={"json": str(out / "drift.json"), "markdown": str(out / "drift.md")},
    )
    atomic_write_bytes(out / "drift.json", (json.dumps(asdict(report), indent=2) + "\n").encode())
    atomic_write_bytes(out / "drift.md", drift_markdown(report).encode())
    return report


def _number(summary: dict, digits: int = 2) -> str:
    if summary["median"] is None:
        return "n/a"
    return f"{summary['median']:.{digits}f} ({summary['worst']:.{digits}f})"


def drift_markdown(report: FolderReport) -> str:
    """The drift table: medians, worst cases in brackets."""
    lines = [
        f"# Does quantisation change where the models look? ({report.method}, "
        f"{report.faces} faces)",
        "",
        f"Maps of each format compared with the {report.reference_format} artifact's map and "
        "with Keras Integrated Gradients (when computed), on 8-pixel cells: median (worst). "
        f"Mask: share of |map| in the lesion mask over the mask's share of the image; goal "
        f">= {MASK_RATIO_GOAL:g}x.",
        "",
        "| model | format | mask ratio | faces >= 2x | rho vs ref | top-10% IoU vs ref | "
        "rho vs IG | top-10% IoU vs IG | label flips |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report.rows:
        goal = (
            "n/a"
            if row.mask_ratio_goal_share is None
            else f"{100 * row.mask_ratio_goal_share:.0f}%"
        )
        lines.append(
            f"| {row.title} | {row.format} | {_number(row.mask_ratio, 1)} | {goal} | "
            f"{_number(row.spearman_vs_reference)} | {_number(row.top10_iou_vs_reference)} | "
            f"{_number(row.spearman_vs_ig)} | {_number(row.top10_iou_vs_ig)} | "
            f"{row.flips_vs_reference} |"
        )
    for name, summary in report.ig_mask_ratio.items():
        lines.append(f"\nKeras IG mask ratio, {name}: {_number(summary, 1)}")
    lines += ["", NOTICE, ""]
    return "\n".join(lines)
