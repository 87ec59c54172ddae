"""How far two maps of one image agree, and the same over a folder (numpy only).

Maps are compared on cells (the mean of each `cell` x `cell` block, 8 px by default: the
occlusion stride), so a pixel-sharp Integrated Gradients map and a blocky occlusion map
are compared on the same footing; two occlusion maps lose nothing by it. Two figures:
Spearman rank correlation of the signed maps, and the overlap (intersection over union)
of their top-10 % cells, the regions of strongest evidence for the explained class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hemiface.explain.metrics import signed_map, spearman

DEFAULT_CELL = 8
TOP_SHARE = 0.10


def cells(attribution: np.ndarray, cell: int = DEFAULT_CELL) -> np.ndarray:
    """The signed (H, W) map averaged over cell x cell blocks (edges cropped to whole cells)."""
    values = signed_map(attribution)
    rows, cols = values.shape[0] // cell, values.shape[1] // cell
    cropped = values[: rows * cell, : cols * cell]
    pooled: np.ndarray = cropped.reshape(rows, cell, cols, cell).mean(axis=(1, 3))
    return pooled


def top_region(values: np.ndarray, share: float = TOP_SHARE) -> np.ndarray:
    """Bool map of the `share` largest values (ties broken by position, so exactly that many)."""
    flat = values.ravel()
    count = max(1, int(round(share * flat.size)))
    chosen = np.zeros(flat.size, dtype=bool)
    chosen[np.argsort(-flat, kind="stable")[:count]] = True
    return chosen.reshape(values.shape)


def top_overlap(a: np.ndarray, b: np.ndarray, share: float = TOP_SHARE) -> float:
    """Intersection over union of the top-`share` regions of two maps of one shape."""
    top_a, top_b = top_region(a, share), top_region(b, share)
    return float((top_a & top_b).sum() / (top_a | top_b).sum())


def compare_maps(a: np.ndarray, b: np.ndarray, cell: int = DEFAULT_CELL) -> dict:
    """{"spearman", "top10_iou"} of two maps of one image, on cells."""
    ca, cb = cells(a, cell), cells(b, cell)
    if ca.shape != cb.shape:
        raise ValueError(f"maps of different sizes: {a.shape[:2]} and {b.shape[:2]}")
    return {"spearman": spearman(ca, cb), "top10_iou": top_overlap(ca, cb)}


def summarize(values: Sequence[float | None], worst: str = "min") -> dict:
    """Median, worst case (the smallest, or largest with worst="max") and count of the
    numbers that exist (None: undefined for that image, e.g. a constant map)."""
    present = np.array([v for v in values if v is not None], dtype=np.float64)
    if present.size == 0:
        return {"median": None, "worst": None, "n": 0, "undefined": len(values)}
    pick = present.min() if worst == "min" else present.max()
    return {
        "median": float(np.median(present)),
        "worst": float(pick),
        "n": int(present.size),
        "undefined": len(values) - int(present.size),
    }
