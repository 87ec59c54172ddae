"""Held-out figures of a binary laterality model (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Severity bands of the synthetic set (SEVERITY_RANGE is 0.1..1.0).
SEVERITY_BANDS = ((0.0, 0.4, "subtle"), (0.4, 0.7, "moderate"), (0.7, 1.01, "marked"))


@dataclass
class ModelMetrics:
    images: int
    accuracy: float
    roc_auc: float
    flip_consistency: float  # mean |p(flip x) - (1 - p(x))|; 0 is perfect
    flip_label_agreement: float  # share of images whose flipped prediction swaps the label
    accuracy_by_severity: dict[str, dict[str, float]] = field(default_factory=dict)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tie correction); NaN for one class."""
    labels = np.asarray(labels) > 0.5
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


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
        roc_auc=roc_auc(labels, p),
        flip_consistency=float(np.mean(np.abs(p_flipped - (1.0 - p)))),
        flip_label_agreement=float(np.mean((p_flipped >= threshold) != (p >= threshold))),
        accuracy_by_severity=bands,
    )
