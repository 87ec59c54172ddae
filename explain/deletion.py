"""Faithfulness by deletion (Petsiuk et al., 2018, RISE): remove the most-attributed pixels
first and watch the explained class's score fall.

Pixels are ranked by their signed attribution toward the explained class (channels
summed) and replaced, a fraction at a time, by the baseline's pixels. The area under
the score-vs-fraction curve is compared with the same curve for random orders: a
faithful map gives a clearly smaller area than random.
"""

from __future__ import annotations

import numpy as np

from hemiface.explain.metrics import signed_map
from hemiface.explain.scorer import ModelScorer, Target

DELETION_STEPS = 16
RANDOM_ORDERS = 3


def deletion_scores(
    scorer: ModelScorer,
    x: np.ndarray,
    replacement: np.ndarray,
    order: np.ndarray,
    target: Target,
    steps: int = DELETION_STEPS,
    batch_size: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """(fractions removed, F at each fraction) when pixels go in `order` (flat indices)."""
    height, width = x.shape[:2]
    fractions = np.linspace(0.0, 1.0, steps + 1)
    images = np.empty((len(fractions), *x.shape), dtype=np.float32)
    flat_x = x.reshape(height * width, -1)
    flat_r = replacement.reshape(height * width, -1)
    for i, fraction in enumerate(fractions):
        removed = order[: int(round(fraction * height * width))]
        image = flat_x.copy()
        image[removed] = flat_r[removed]
        images[i] = image.reshape(x.shape)
    return fractions, scorer.scores(images, target, batch_size)


def area_under(fractions: np.ndarray, scores: np.ndarray) -> float:
    return float(np.sum((scores[1:] + scores[:-1]) * np.diff(fractions)) / 2.0)


def deletion_curve(
    scorer: ModelScorer,
    x: np.ndarray,
    attributions: np.ndarray,
    replacement: np.ndarray,
    target: Target,
    steps: int = DELETION_STEPS,
    random_orders: int = RANDOM_ORDERS,
    seed: int = 0,
    batch_size: int = 8,
) -> dict:
    """Deletion curve of the attribution order against the mean of random orders."""
    return curve_against_random(
        scorer, x, replacement, attributions, target, steps, random_orders, seed, batch_size
    )


def curve_against_random(
    scorer: ModelScorer,
    start: np.ndarray,
    end: np.ndarray,
    attributions: np.ndarray,
    target: Target,
    steps: int,
    random_orders: int,
    seed: int,
    batch_size: int = 8,
) -> dict:
    """The score as `start`'s pixels become `end`'s in the attribution's order (deletion:
    the image to the fill; insertion: the fill to the image), against the mean of random
    orders, with the areas under both curves and their ratio."""
    start = np.asarray(start, np.float32)
    end = np.asarray(end, np.float32)
    order = np.argsort(-signed_map(attributions).ravel(), kind="stable")
    fractions, scores = deletion_scores(scorer, start, end, order, target, steps, batch_size)
    rng = np.random.default_rng(seed)
    random_curves = [
        deletion_scores(scorer, start, end, rng.permutation(order.size), target, steps, batch_size)[
            1
        ]
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
        # Deletion: below 1, removing the attributed pixels hurts the score faster than
        # chance. Insertion: above 1, putting them back restores it faster than chance.
        "auc_ratio_to_random": auc / auc_random if auc_random > 0 else None,
        "random_orders": random_orders,
    }
