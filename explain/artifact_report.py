"""`explain_artifacts`: one image, every model and format of a set; the files it writes.

Outputs in `out` (each written to a temporary file and renamed):
`<model>.<format>.<method>.npy` (the (H, W) float32 map toward the explained class),
`<model>.<format>.<method>.png` (the map over the input, OpenCV), `formats.png` (one row
per model: the input, then each format's map, then Keras IG when given) and
`explain-artifacts.json` (every figure). Needs neither TensorFlow nor matplotlib.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from hemiface.core.domain import NOTICE
from hemiface.explain.annotations import find_annotation
from hemiface.explain.artifact_explain import (
    ArtifactExplainSettings,
    FormatProgress,
    ModelResult,
    explain_models,
    open_set,
)
from hemiface.explain.artifacts import usable_formats
from hemiface.explain.figures import overlay
from hemiface.explain.geometry import find_midline, read_mask
from hemiface.explain.grid_figure import MapPanel, MapRow, grid_figure, row_scale
from hemiface.explain.metrics import SIDE_NOTE
from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.images import read_image
from hemiface.runtime.manifest import atomic_write_bytes, load_manifest
from hemiface.runtime.modelset import select_models
from hemiface.runtime.preprocess import resize_for_model

REPORT_NAME = "explain-artifacts.json"
FIGURE_NAME = "formats.png"


@dataclass
class GroundTruth:
    """What is known about an image beyond its pixels, at the models' input size."""

    mask: np.ndarray | None
    mask_path: str | None
    midline_x: float | None  # in model-input pixels
    midline_source: str
    annotation: dict | None


@dataclass
class ArtifactReport:
    image: str
    model_set: str
    out: str
    method: str
    settings: dict
    formats: list[str]
    reference_format: str
    models: list[ModelResult]
    midline: dict
    annotation: dict | None
    mask: str | None
    files: dict
    seconds: dict
    created: str
    convention: str = SIDE_NOTE
    notice: str = NOTICE

    def to_dict(self) -> dict:
        data = asdict(self)
        data["models"] = [m.to_dict() for m in self.models]
        return data


def ground_truth(
    image: Path,
    rgb: np.ndarray,
    size: tuple[int, int],
    mask: Path | None = None,
    face_box: tuple[int, int, int, int] | None = None,
    use_annotations: bool = True,
) -> GroundTruth:
    """The lesion mask (given, or from a synthetic data set's labels.csv) and the midline."""
    from hemiface.runtime.manifest import Preprocessing

    annotation = find_annotation(image) if use_annotations else None
    if mask is None and annotation is not None and annotation.mask.is_file():
        mask = annotation.mask
    height, width = size
    spec = Preprocessing(width=width, height=height)
    pixels = None if mask is None else read_mask(Path(mask), rgb.shape[:2], spec)
    fraction, source = find_midline(rgb, face_box, annotation.midline_x if annotation else None)
    return GroundTruth(
        mask=pixels,
        mask_path=None if mask is None else str(mask),
        midline_x=None if fraction is None else fraction * width,
        midline_source=source,
        annotation=annotation.to_dict() if annotation else None,
    )


def choose_formats(folder: Path, names: list[str], asked: list[str] | None) -> list[str]:
    """The formats asked for (float32 first when among them), or every usable one."""
    manifest = load_manifest(folder, check_files=False)
    usable = usable_formats(manifest, names)
    if not asked:
        if not usable:
            raise HemifaceError(f"{folder}: no format has a verified artifact of every model")
        return usable
    order = {"float32": 0}
    return sorted(dict.fromkeys(asked), key=lambda f: order.get(f, 1))


def write_npy(path: Path, values: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, values.astype(np.float32))
    atomic_write_bytes(path, buffer.getvalue())


def write_png(path: Path, rgb: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise HemifaceError(f"{path}: OpenCV could not encode the picture")
    atomic_write_bytes(path, encoded.tobytes())


def _panel_lines(result: object) -> list[str]:
    from hemiface.explain.artifact_explain import FormatResult

    assert isinstance(result, FormatResult)
    first = f"P(R)={result.p_right:.2f}"
    if result.mask is not None and result.mask["ratio_to_area_share"] is not None:
        first += f" mask {result.mask['ratio_to_area_share']:.1f}x"
    second = ""
    if result.vs_reference is not None and result.vs_reference["spearman"] is not None:
        second = (
            f"rho {result.vs_reference['spearman']:.2f} IoU {result.vs_reference['top10_iou']:.2f}"
        )
    return [first, second]


def write_outputs(
    out: Path,
    image: Path,
    model_rgb: np.ndarray,
    models: list[ModelResult],
    method: str,
    truth: GroundTruth,
    ig_maps: dict[str, tuple[np.ndarray, str]] | None,
) -> dict:
    """Maps (.npy), overlays and the side-by-side figure; returns {"figure": path}."""
    rows = []
    for model in models:
        panels = [MapPanel("input", [f"explained: {model.explained}"], None)]
        scale = row_scale([r.map for r in model.formats if r.map is not None])
        for result in model.formats:
            assert result.map is not None
            stem = out / f"{model.name}.{result.format}.{method}"
            write_npy(stem.with_suffix(".npy"), result.map)
            write_png(stem.with_suffix(".png"), overlay(model_rgb, result.map, scale))
            result.files = {
                "map": str(stem.with_suffix(".npy")),
                "overlay": str(stem.with_suffix(".png")),
            }
            panels.append(MapPanel(result.format, _panel_lines(result), result.map))
        if ig_maps and model.name in ig_maps and model.ig is not None:
            ig_map, ig_class = ig_maps[model.name]
            from hemiface.explain.metrics import signed_map

            signed = signed_map(ig_map) * (1.0 if ig_class == model.explained else -1.0)
            panels.append(MapPanel("Keras IG", ["own colour scale"], signed, own_scale=True))
        rows.append(MapRow(f"{model.title} (explained: {model.explained})", panels))
    heading = f"{image.name}: {method} maps of the TFLite artifacts, by format"
    figure = grid_figure(model_rgb, rows, out / FIGURE_NAME, heading, truth.midline_x, truth.mask)
    return {"figure": str(figure)}


def explain_artifacts(
    image: Path,
    model_set: Path,
    out: Path,
    settings: ArtifactExplainSettings,
    *,
    formats: list[str] | None = None,
    only: list[str] | None = None,
    mask: Path | None = None,
    face_box: tuple[int, int, int, int] | None = None,
    use_annotations: bool = True,
    ig_maps: dict[str, tuple[np.ndarray, str]] | None = None,
    progress: FormatProgress | None = None,
) -> ArtifactReport:
    """Explain every model of `model_set` in each of `formats` (default: every usable one)
    on `image` with settings.method, and write the maps, overlays, figure and JSON."""
    started = time.perf_counter()
    image, model_set, out = Path(image), Path(model_set), Path(out)
    rgb = read_image(image)
    manifest = load_manifest(model_set, check_files=False)
    names = select_models(manifest, model_set, only)
    chosen = choose_formats(model_set, names, formats)
    opened = open_set(model_set, chosen, names, settings)
    opened_at = time.perf_counter()
    try:
        spec = opened.formats[opened.reference].spec
        truth = ground_truth(image, rgb, (spec.height, spec.width), mask, face_box,
                             use_annotations)  # fmt: skip
        models = explain_models(rgb, opened, settings, truth.mask, truth.midline_x, ig_maps,
                                progress)  # fmt: skip
    finally:
        opened.close()
    explained_at = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    files = write_outputs(
        out, image, resize_for_model(rgb, spec), models, settings.method, truth, ig_maps
    )
    files["json"] = str(out / REPORT_NAME)
    method_settings = settings.occlusion if settings.method == "occlusion" else settings.rise
    report = ArtifactReport(
        image=str(image),
        model_set=str(model_set),
        out=str(out),
        method=settings.method,
        settings={**asdict(settings), "method_settings": asdict(method_settings)},
        formats=chosen,
        reference_format=opened.reference,
        models=models,
        midline={"x": truth.midline_x, "source": truth.midline_source},
        annotation=truth.annotation,
        mask=truth.mask_path,
        files=files,
        seconds={
            "open": round(opened_at - started, 3),
            "explain": round(explained_at - opened_at, 3),
            "total": round(time.perf_counter() - started, 3),
        },
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    atomic_write_bytes(out / REPORT_NAME, (json.dumps(report.to_dict(), indent=2) + "\n").encode())
    return report
