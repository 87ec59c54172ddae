"""Pictures of attribution maps: per-model overlays (OpenCV) and the comparison figure.

One colour scale is shared by every model of a run (`shared_scale`), so a map that looks
twice as strong is twice as strong. IG maps are pixel-sharp and heavy-tailed: the scale
is the 99.5th percentile of |map| across models, and values beyond it saturate.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hemiface.core.errors import HemifaceError
from hemiface.explain.metrics import signed_map
from hemiface.runtime.manifest import atomic_write_bytes

SCALE_PERCENTILE = 99.5
OVERLAY_MIN_SIDE = 448  # overlays of a 224 input are drawn at 2x, nearest, to stay sharp
OVERLAY_OPACITY = 0.75


@dataclass
class Panel:
    title: str  # e.g. "Base"
    subtitle: str  # prediction, explained class, completeness error
    attributions: np.ndarray  # (H, W, C) signed
    midline_x: float | None = None  # in map pixels; drawn as a dashed line
    mask: np.ndarray | None = None  # (H, W) bool ground-truth lesion; drawn as an outline


def _annotate(ax: Any, panel: Panel) -> None:
    if panel.midline_x is not None:
        ax.axvline(panel.midline_x - 0.5, color="0.2", linestyle="--", linewidth=0.8)
    if panel.mask is not None and panel.mask.any():
        ax.contour(panel.mask.astype(float), levels=[0.5], colors="limegreen", linewidths=0.9)


def shared_scale(maps: list[np.ndarray]) -> float:
    """One positive value for |map| that every model's picture is scaled by."""
    values = [np.percentile(np.abs(signed_map(m)), SCALE_PERCENTILE) for m in maps]
    scale = float(max(values)) if values else 0.0
    if scale <= 0:
        scale = float(max((np.abs(signed_map(m)).max() for m in maps), default=0.0))
    return scale if scale > 0 else 1.0


def overlay(rgb: np.ndarray, attributions: np.ndarray, scale: float) -> np.ndarray:
    """Positive attribution (evidence for the explained class) as a JET heat overlay.

    The colour's opacity follows the attribution, so unattributed pixels show the image.
    """
    heat: np.ndarray = np.clip(signed_map(attributions) / scale, 0.0, 1.0)
    image: np.ndarray = np.asarray(rgb, dtype=np.uint8)
    if image.shape[:2] != heat.shape:
        image = cv2.resize(image, heat.shape[::-1], interpolation=cv2.INTER_AREA)
    factor = max(1, int(np.ceil(OVERLAY_MIN_SIDE / min(heat.shape))))
    if factor > 1:
        size = (heat.shape[1] * factor, heat.shape[0] * factor)
        image = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)
        heat = cv2.resize(heat, size, interpolation=cv2.INTER_NEAREST)
    colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB).astype(np.float32)
    alpha = (OVERLAY_OPACITY * np.sqrt(heat))[..., None]
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colour
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def _draw_map(ax: Any, rgb: np.ndarray, panel: Panel, scale: float) -> Any:
    height, width = panel.attributions.shape[:2]
    grey = cv2.resize(
        np.asarray(rgb, dtype=np.float32).mean(axis=-1),
        (width, height),
        interpolation=cv2.INTER_AREA,
    )
    ax.imshow(grey, cmap="gray")
    image = ax.imshow(
        signed_map(panel.attributions), cmap="RdBu_r", vmin=-scale, vmax=scale, alpha=0.8
    )
    _annotate(ax, panel)
    return image


def _input_panel(ax: Any, rgb: np.ndarray, panels: list[Panel]) -> None:
    ax.imshow(rgb)
    ax.set_title("input (as the models see it)", fontsize=9)
    # The side convention, under the picture: the image's left is the patient's right.
    ax.set_xlabel("<- patient's RIGHT  |  patient's LEFT ->", fontsize=8)
    if not panels:
        return
    first = panels[0]
    height, width = rgb.shape[:2]
    scale_x = width / first.attributions.shape[1]
    mask = None
    if first.mask is not None:
        small = first.mask.astype(np.uint8)
        mask = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)
    midline = None if first.midline_x is None else first.midline_x * scale_x
    _annotate(ax, Panel("", "", np.zeros((height, width)), midline, mask))


def comparison_figure(
    rgb: np.ndarray,
    panels: list[Panel],
    scale: float,
    path: Path,
    caption: str = "",
) -> Path:
    """Input + one signed map per model on one shared, symmetric colour scale (top row),
    and each map on its own scale (bottom row), so that a model with much larger
    attributions does not hide where the others look."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = len(panels) + 1
    fig, grid = plt.subplots(2, count, figsize=(3.2 * count + 0.8, 7.4), squeeze=False)
    _input_panel(grid[0][0], rgb, panels)
    grid[1][0].axis("off")
    grid[1][0].text(
        0.5,
        0.5,
        "bottom row:\neach map on its own scale\n(where each model looks;\n"
        "magnitudes do not compare)",
        ha="center",
        va="center",
        fontsize=8,
    )
    shared = None
    for column, panel in enumerate(panels, start=1):
        shared = _draw_map(grid[0][column], rgb, panel, scale)
        grid[0][column].set_title(f"{panel.title}\n{panel.subtitle}", fontsize=8)
        own = shared_scale([panel.attributions])
        _draw_map(grid[1][column], rgb, panel, own)
        grid[1][column].set_title(f"{panel.title}, own scale +/-{own:.2g}", fontsize=8)
    for ax in grid.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if shared is not None:
        bar = fig.colorbar(shared, ax=list(grid[0][1:]), fraction=0.02, pad=0.01)
        bar.set_label("IG attribution toward the explained class (shared scale)", fontsize=7)
    if caption:
        fig.text(0.01, 0.01, caption, fontsize=7, ha="left", va="bottom")
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    write_whole(path, buffer.getvalue())
    return path


def write_whole(path: Path, content: bytes) -> None:
    """Write `content` through a temporary file renamed into place: a full disk leaves the
    old file (or none), never a partial one; HemifaceError names the file."""
    try:
        atomic_write_bytes(path, content)
    except OSError as exc:
        raise HemifaceError(f"{path}: cannot write ({exc.strerror or exc})") from None
