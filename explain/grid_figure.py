"""The side-by-side figure of perturbation maps, drawn with OpenCV alone (the Pi profile has
no matplotlib): one row per model, the input then one map per format (and Keras IG when
given), each with its figures under the title.

Colours: red is evidence for the explained class, blue against, over the grey input. Maps
of one row share one colour scale (the 99th percentile of |map| over the row's TFLite
maps), so formats compare by strength as well as place; an IG map, in other units, has
its own. Dashed line: the face's midline; green outline: the lesion mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hemiface.runtime.images import write_image

TITLE_HEIGHT = 46
BANNER_HEIGHT = 54
MIN_WIDTH = 520  # room for the banner's lines
MARGIN = 6
FONT = cv2.FONT_HERSHEY_SIMPLEX
SCALE_PERCENTILE = 99.0


@dataclass
class MapPanel:
    title: str  # e.g. "int8"
    lines: list[str]  # short figures under the title
    values: np.ndarray | None  # (H, W) signed map; None: the input itself
    own_scale: bool = False  # True for maps in other units (IG)


@dataclass
class MapRow:
    title: str  # the model, e.g. "Base (explained: Right)"
    panels: list[MapPanel]


def row_scale(values: list[np.ndarray]) -> float:
    magnitudes = [np.percentile(np.abs(v), SCALE_PERCENTILE) for v in values]
    scale = float(max(magnitudes, default=0.0))
    if scale <= 0:
        scale = float(max((np.abs(v).max() for v in values), default=0.0))
    return scale if scale > 0 else 1.0


def render_map(rgb: np.ndarray, values: np.ndarray, scale: float) -> np.ndarray:
    """A signed map over the grey input: red positive, blue negative, opacity by strength."""
    grey = np.repeat(rgb.astype(np.float32).mean(axis=-1, keepdims=True), 3, axis=-1)
    ratio = np.clip(values / scale, -1.0, 1.0)[..., None]
    red, blue = np.array([220.0, 30.0, 30.0]), np.array([30.0, 60.0, 220.0])
    colour = np.where(ratio >= 0, red, blue)
    alpha = 0.85 * np.sqrt(np.abs(ratio))
    return np.clip((1 - alpha) * grey + alpha * colour + 0.5, 0, 255).astype(np.uint8)


def _annotate(panel: np.ndarray, midline_x: float | None, mask: np.ndarray | None) -> None:
    height = panel.shape[0]
    if midline_x is not None:
        x = int(round(midline_x))
        for y in range(0, height, 8):
            cv2.line(panel, (x, y), (x, min(height - 1, y + 4)), (40, 40, 40), 1)
    if mask is not None and mask.any():
        contours, _ = cv2.findContours(
            mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        cv2.drawContours(panel, contours, -1, (50, 205, 50), 1)


def _text(canvas: np.ndarray, text: str, x: int, y: int, size: float = 0.38) -> None:
    cv2.putText(canvas, text, (x, y), FONT, size, (20, 20, 20), 1, cv2.LINE_AA)


def grid_figure(
    rgb: np.ndarray,
    rows: list[MapRow],
    path: Path,
    heading: str,
    midline_x: float | None = None,
    mask: np.ndarray | None = None,
) -> Path:
    """Write the figure to `path` (PNG) and return the path. `rgb` is the model input."""
    height, width = rgb.shape[:2]
    columns = max(len(r.panels) for r in rows)
    cell_w, cell_h = width + MARGIN, height + TITLE_HEIGHT + 18 + MARGIN
    canvas = np.full(
        (BANNER_HEIGHT + cell_h * len(rows), max(MIN_WIDTH, MARGIN + cell_w * columns), 3),
        255,
        np.uint8,
    )
    _text(canvas, heading, MARGIN, 16, 0.45)
    _text(canvas, "<- patient's RIGHT | patient's LEFT -> (unmirrored image)", MARGIN, 32)
    _text(canvas, "red: for the explained class, blue: against; dashed: midline; "
          "green: lesion mask", MARGIN, 46)  # fmt: skip
    for r, row in enumerate(rows):
        top = BANNER_HEIGHT + r * cell_h
        _text(canvas, row.title, MARGIN, top + 13, 0.45)
        shared = row_scale(
            [p.values for p in row.panels if p.values is not None and not p.own_scale]
        )
        for c, panel in enumerate(row.panels):
            left = MARGIN + c * cell_w
            for i, line in enumerate([panel.title, *panel.lines][:3]):
                _text(canvas, line, left, top + 28 + 12 * i)
            if panel.values is None:
                picture = np.ascontiguousarray(rgb, dtype=np.uint8).copy()
            else:
                scale = row_scale([panel.values]) if panel.own_scale else shared
                picture = render_map(rgb, panel.values, scale)
            _annotate(picture, midline_x, mask)
            y0 = top + TITLE_HEIGHT + 18
            canvas[y0 : y0 + height, left : left + width] = picture
    path = Path(path)
    write_image(path, canvas)
    return path
