"""Agreement and quality figures on probability vectors (p = P(positive label)).

Pure numpy, so every figure can be checked on hand-made arrays: an artifact compared with
itself agrees 100% with |Δp| = 0; Cohen's kappa of identical labels is 1; a perfect
ranking has ROC AUC 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

ECE_BINS = 10


@dataclass
class PairAgreement:
    """How two probability vectors over the same images compare."""

    n: int
    label_agreement: float  # share of images with the same thresholded label
    flips: int  # images whose label differs
    mean_abs_dp: float
    p99_abs_dp: float
    max_abs_dp: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def labels_of(p: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """1 where p >= threshold (the positive label), else 0, as the runtime decides."""
    return (np.asarray(p, dtype=np.float64) >= threshold).astype(np.int64)


def compare_probabilities(
    p_a: np.ndarray, p_b: np.ndarray, threshold: float = 0.5
) -> PairAgreement:
    a = np.asarray(p_a, dtype=np.float64)
    b = np.asarray(p_b, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"need two equal, non-empty vectors (got {a.shape} and {b.shape})")
    abs_dp = np.abs(a - b)
    same = labels_of(a, threshold) == labels_of(b, threshold)
    return PairAgreement(
        n=int(a.size),
        label_agreement=float(same.mean()),
        flips=int((~same).sum()),
        mean_abs_dp=float(abs_dp.mean()),
        p99_abs_dp=float(np.percentile(abs_dp, 99)),
        max_abs_dp=float(abs_dp.max()),
    )


def accuracy(p: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> float:
    return float((labels_of(p, threshold) == np.asarray(y)).mean())


def roc_auc(p: np.ndarray, y: np.ndarray) -> float | None:
    """ROC AUC by the Mann-Whitney statistic (ties count one half); None with one class."""
    scores = np.asarray(p, dtype=np.float64)
    truth = np.asarray(y).astype(bool)
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size, dtype=np.float64)
    sorted_scores = scores[order]
    # Average ranks over runs of tied scores.
    start = 0
    while start < scores.size:
        end = start
        while end + 1 < scores.size and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    rank_sum = ranks[truth].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def expected_calibration_error(
    p: np.ndarray, y: np.ndarray, bins: int = ECE_BINS, threshold: float = 0.5
) -> float:
    """ECE of the predicted label's confidence, max(p, 1 - p), in equal-width bins.

    Confidence lies in [0.5, 1]; the bins span [0, 1] as is customary, so only the upper
    half is ever populated.
    """
    prob = np.asarray(p, dtype=np.float64)
    truth = np.asarray(y)
    predicted = labels_of(prob, threshold)
    confidence = np.where(predicted == 1, prob, 1.0 - prob)
    correct = (predicted == truth).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


def cohen_kappa(labels_a: np.ndarray, labels_b: np.ndarray) -> float:
    """Cohen's kappa of two binary label vectors; 1.0 when they agree and chance does too."""
    a = np.asarray(labels_a).astype(np.int64)
    b = np.asarray(labels_b).astype(np.int64)
    observed = float((a == b).mean())
    p_a, p_b = a.mean(), b.mean()
    expected = float(p_a * p_b + (1 - p_a) * (1 - p_b))
    if expected >= 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - expected) / (1.0 - expected)


def flip_consistency(p: np.ndarray, p_flipped: np.ndarray) -> float:
    """Mean |p(flip x) - (1 - p(x))|: 0 for a model whose answer mirrors with the image."""
    a = np.asarray(p, dtype=np.float64)
    b = np.asarray(p_flipped, dtype=np.float64)
    return float(np.mean(np.abs(b - (1.0 - a))))


def ensemble_probability(per_model: list[np.ndarray]) -> np.ndarray:
    """The mean probability of the models, image by image."""
    return np.mean(np.stack([np.asarray(p, dtype=np.float64) for p in per_model]), axis=0)


def majority_vote(per_model: list[np.ndarray], threshold: float = 0.5) -> np.ndarray:
    votes = np.stack([labels_of(p, threshold) for p in per_model])
    return (votes.sum(axis=0) * 2 > len(per_model)).astype(np.int64)
