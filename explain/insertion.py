"""Faithfulness by insertion (Petsiuk et al., 2018, RISE), deletion's mirror: start from the
fill and put the most-attributed pixels back first; a faithful map makes the explained
class's score rise fast. Reuses deletion's curve with the image and the fill swapped.
"""

from __future__ import annotations

import numpy as np

from hemiface.explain.deletion import DELETION_STEPS, RANDOM_ORDERS, area_under, deletion_scores
from hemiface.explain.metrics import signed_map
from hemiface.explain.scorer import ModelScorer, Target


def insertion_curve(
    scorer: ModelScorer,
    x: np.ndarray,
    attributions: np.ndarray,
    fill: np.ndarray,
    target: Target,
    steps: int = DELETION_STEPS,
    random_orders: int = RANDOM_ORDERS,
    seed: int = 0,
) -> dict:
    """Insertion curve of the attribution order against the mean of random orders
    (`scorer` needs only `scores(images, target, batch_size)`)."""
    x = np.asarray(x, np.float32)
    fill = np.asarray(fill, np.float32)
    order = np.argsort(-signed_map(attributions).ravel(), kind="stable")
    # Replacing the fill's pixels by the image's, in order, is inserting them.
    fractions, scores = deletion_scores(scorer, fill, x, order, target, steps)
    rng = np.random.default_rng(seed)
    random_curves = [
        deletion_scores(scorer, fill, x, rng.permutation(order.size), target, steps)[1]
        for _ in range(random_orders)
    ]
    random_mean = np.mean(random_curves, axis=0)
    auc, auc_random = area_under(fractions, scores), area_under(fractions, random_mean)
    return {
        "fractions": [float(f) for f in fractions],
        "scores": [float(s) for s in scores],
        "random_scores": [float(s) for s in random_mean],
        "auc": auc,
        "auc_random": auc_random,
        # Above 1: putting the attributed pixels back restores the score faster than chance.
        "auc_ratio_to_random": auc / auc_random if auc_random > 0 else None,
        "random_orders": random_orders,
    }
