"""Held-out figures of a binary laterality model (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hemiface.core import metrics as core

# Severity bands of the synthetic set (SEVERITY_RANGE is 0.1..1.0).
SEVERITY_BANDS = ((0.0, 0.4, "subtle"), (0.4, 0.7, "moderate"), (0.7, 1.01, "marked"))


@dataclass
class ModelMetrics:
    images: int
    accuracy: float
    roc_auc: float  # NaN with one class (the test split always holds both: load_dataset)
    flip_consistency: float  # mean |p(flip x) - (1 - p(x))|; 0 is perfect
    flip_label_agreement: float  # share of images whose flipped prediction swaps the label
    accuracy_by_severity: dict[str, dict[str, float]] = field(default_factory=dict)


def evaluate(labels: np.ndarray, p: np.ndarray, p_flipped: np.ndarray,
             severity: np.ndarray, threshold: float = 0.5) -> ModelMetrics:  # fmt: skip
    """Figures from P(Right) on the test images and on their mirror images."""
    labels = np.asarray(labels, np.float64)
    p = np.asarray(p, np.float64).reshape(-1)
    p_flipped = np.asarray(p_flipped, np.float64).reshape(-1)
    correct = (p >= threshold) == (labels > 0.5)
    bands: dict[str, dict[str, float]] = {}
    for low, high, name in SEVERITY_BANDS:
        inside = (severity >= low) & (severity < high)
        if inside.any():
            bands[name] = {"from": low, "to": min(high, 1.0), "images": int(inside.sum()),
                           "accuracy": float(correct[inside].mean())}  # fmt: skip
    return ModelMetrics(
        images=int(len(labels)),
        accuracy=float(correct.mean()),
        roc_auc=_float(core.roc_auc(labels, p)),
        flip_consistency=core.flip_consistency(p, p_flipped),
        flip_label_agreement=core.flip_label_agreement(p, p_flipped, threshold),
        accuracy_by_severity=bands,
    )


def _float(value: float | None) -> float:
    return float("nan") if value is None else value
