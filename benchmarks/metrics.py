"""The bench's groupings of the shared figures in `hemiface.core.metrics`: how two
probability vectors compare (one record), and the ensemble of several models.

Pure numpy, so every figure can be checked on hand-made arrays: an artifact compared with
itself agrees 100% with |Δp| = 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hemiface.core import metrics as core


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


def compare_probabilities(
    p_a: np.ndarray, p_b: np.ndarray, threshold: float = 0.5
) -> PairAgreement:
    a = np.asarray(p_a, dtype=np.float64)
    b = np.asarray(p_b, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"need two equal, non-empty vectors (got {a.shape} and {b.shape})")
    return PairAgreement(
        n=int(a.size),
        label_agreement=core.agreement(a, b, threshold),
        flips=core.label_flips(a, b, threshold),
        mean_abs_dp=core.mean_abs_dp(a, b),
        p99_abs_dp=core.p99_abs_dp(a, b),
        max_abs_dp=core.max_abs_dp(a, b),
    )


def ensemble_probability(per_model: list[np.ndarray]) -> np.ndarray:
    """The mean probability of the models, image by image."""
    return np.mean(np.stack([np.asarray(p, dtype=np.float64) for p in per_model]), axis=0)


def majority_vote(per_model: list[np.ndarray], threshold: float = 0.5) -> np.ndarray:
    votes = np.stack([core.predicted_labels(p, threshold) for p in per_model])
    return (votes.sum(axis=0) * 2 > len(per_model)).astype(np.int64)
