"""Figures on probability vectors, one implementation each (numpy in, Python floats out).

`p` is always P(positive label) (P(Right) for the laterality models); `labels` are 0/1 (or
booleans: truthy is the positive label). Argument order follows scikit-learn: the truth
first, then the scores. Every function is checked in the tests on hand-made arrays: a
perfect ranking has ROC AUC 1, a vector compared with itself agrees 100% with |dp| = 0,
identical labels have Cohen's kappa 1.
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 10


def _vector(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _truth(labels: np.ndarray) -> np.ndarray:
    return np.asarray(labels, dtype=np.float64).reshape(-1) > 0.5


def predicted_labels(p: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """1 where p >= threshold (the positive label), else 0, as the runtime decides."""
    return (_vector(p) >= threshold).astype(np.int64)


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of `values` (flattened) in ascending order; tied values share their mean
    rank (as scipy's rankdata)."""
    values = _vector(values)
    if values.size == 0:
        return values
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    # Group equal values: each group's rank is the mean of its positions.
    starts = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    group = np.cumsum(starts) - 1
    positions = np.arange(1, values.size + 1, dtype=np.float64)
    mean_rank = np.bincount(group, weights=positions) / np.bincount(group)
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = mean_rank[group]
    return ranks


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve by the Mann-Whitney statistic (ties count one half);
    None when only one class is present."""
    truth = _truth(labels)
    scores = _vector(scores)
    if truth.shape != scores.shape:
        raise ValueError(f"labels and scores differ in length ({truth.size} and {scores.size})")
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = float(rank(scores)[truth].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def accuracy(labels: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    """Share of images whose thresholded prediction is their label."""
    return float(np.mean((_vector(p) >= threshold) == _truth(labels)))


def flip_consistency(p: np.ndarray, p_flipped: np.ndarray) -> float:
    """Mean |p(mirrored x) - (1 - p(x))|: 0 for a model whose answer mirrors with the image."""
    return float(np.mean(np.abs(_vector(p_flipped) - (1.0 - _vector(p)))))


def flip_label_agreement(p: np.ndarray, p_flipped: np.ndarray, threshold: float = 0.5) -> float:
    """Share of images whose mirrored prediction swaps the label."""
    return float(np.mean((_vector(p_flipped) >= threshold) != (_vector(p) >= threshold)))


def _pair(p_a: np.ndarray, p_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _vector(p_a), _vector(p_b)
    if a.shape != b.shape:
        raise ValueError(f"need two vectors of equal length (got {a.size} and {b.size})")
    return a, b


def label_flips(p_a: np.ndarray, p_b: np.ndarray, threshold: float = 0.5) -> int:
    """How many images get a different thresholded label from the two vectors."""
    a, b = _pair(p_a, p_b)
    return int(np.sum((a >= threshold) != (b >= threshold)))


def agreement(p_a: np.ndarray, p_b: np.ndarray, threshold: float = 0.5) -> float:
    """Share of images with the same thresholded label (0.0 for empty vectors)."""
    a, _ = _pair(p_a, p_b)
    return 1.0 - label_flips(p_a, p_b, threshold) / a.size if a.size else 0.0


def abs_dp(p_a: np.ndarray, p_b: np.ndarray) -> np.ndarray:
    """|p_a - p_b| image by image."""
    a, b = _pair(p_a, p_b)
    return np.abs(a - b)


def mean_abs_dp(p_a: np.ndarray, p_b: np.ndarray) -> float:
    delta = abs_dp(p_a, p_b)
    return float(delta.mean()) if delta.size else 0.0


def p99_abs_dp(p_a: np.ndarray, p_b: np.ndarray) -> float:
    delta = abs_dp(p_a, p_b)
    return float(np.percentile(delta, 99)) if delta.size else 0.0


def max_abs_dp(p_a: np.ndarray, p_b: np.ndarray) -> float:
    delta = abs_dp(p_a, p_b)
    return float(delta.max()) if delta.size else 0.0


def ece(labels: np.ndarray, p: np.ndarray, bins: int = ECE_BINS, threshold: float = 0.5) -> float:
    """Expected calibration error of the predicted label's confidence, max(p, 1 - p), in
    `bins` equal-width bins over [0, 1] (confidence lies in [0.5, 1], so only the upper
    half of the bins is ever populated)."""
    prob = _vector(p)
    predicted = prob >= threshold
    confidence = np.where(predicted, prob, 1.0 - prob)
    correct = (predicted == _truth(labels)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            total += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(total)


def cohen_kappa(labels_a: np.ndarray, labels_b: np.ndarray) -> float:
    """Cohen's kappa of two binary label vectors; 1.0 when they agree and chance does too."""
    a = _truth(labels_a)
    b = _truth(labels_b)
    observed = float(np.mean(a == b))
    share_a, share_b = float(a.mean()), float(b.mean())
    expected = share_a * share_b + (1 - share_a) * (1 - share_b)
    if expected >= 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - expected) / (1.0 - expected)
