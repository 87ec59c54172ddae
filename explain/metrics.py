"""Figures of trust computed from an attribution map (numpy only).

Side convention: labels name the PATIENT's side; in an unmirrored image the
patient's right is on the IMAGE's left. So attribution concentrated on the image's left
half points to the patient's right side.
"""

from __future__ import annotations

import numpy as np

from hemiface.core.metrics import rank

SIDE_NOTE = (
    "unmirrored image: the image's left half is the patient's RIGHT side, "
    "the image's right half the patient's LEFT side"
)


def signed_map(attributions: np.ndarray) -> np.ndarray:
    """(H, W) signed map: attributions summed over colour channels."""
    attributions = np.asarray(attributions, dtype=np.float64)
    return attributions.sum(axis=-1) if attributions.ndim == 3 else attributions


def magnitude_map(attributions: np.ndarray) -> np.ndarray:
    """(H, W) |attribution| summed over colour channels."""
    attributions = np.abs(np.asarray(attributions, dtype=np.float64))
    return attributions.sum(axis=-1) if attributions.ndim == 3 else attributions


def laterality(attributions: np.ndarray, midline_x: float | None = None) -> dict:
    """Shares of positive attribution (toward the explained class) on each image half.

    `midline_x` is the face's midline in pixels of the map (default: the image centre);
    a column belongs to the left half when its centre lies left of the midline.
    """
    positive = np.clip(signed_map(attributions), 0.0, None)
    width = positive.shape[1]
    midline = width / 2.0 if midline_x is None else float(np.clip(midline_x, 0.0, width))
    centres = np.arange(width) + 0.5
    left = float(positive[:, centres < midline].sum())
    right = float(positive[:, centres >= midline].sum())
    total = left + right
    result: dict = {
        "midline_x": midline,
        "image_left_share": None,
        "image_right_share": None,
        "points_to_patient_side": None,
        "convention": SIDE_NOTE,
    }
    if total > 0:
        result["image_left_share"] = left / total
        result["image_right_share"] = right / total
        # The image's left half is the patient's right side.
        result["points_to_patient_side"] = "Right" if left > right else "Left"
    return result


def mask_metrics(attributions: np.ndarray, mask: np.ndarray) -> dict:
    """How much |attribution| falls inside a ground-truth mask, and the pointing game.

    Pointing game (Zhang et al., 2016, without tolerance): a hit when the pixel of
    largest |attribution| lies inside the mask.
    """
    magnitude = magnitude_map(attributions)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != magnitude.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the map's {magnitude.shape}")
    mask_share = float(mask.mean())
    total = float(magnitude.sum())
    inside = float(magnitude[mask].sum()) / total if total > 0 else None
    peak = np.unravel_index(int(np.argmax(magnitude)), magnitude.shape)
    return {
        "share_inside_mask": inside,
        "mask_area_share": mask_share,
        "ratio_to_area_share": (inside / mask_share) if inside is not None and mask_share else None,
        "pointing_game_hit": bool(mask[peak]),
        "peak_yx": [int(peak[0]), int(peak[1])],
    }


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman rank correlation of two maps (None when one of them is constant)."""
    ra, rb = rank(a), rank(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denominator = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denominator) if denominator > 0 else None
