"""Faithfulness by insertion (Petsiuk et al., 2018, RISE), deletion's mirror: start from the
fill and put the most-attributed pixels back first; a faithful map makes the explained
class's score rise fast. Reuses deletion's curve with the image and the fill swapped.
"""

from __future__ import annotations

import numpy as np

from hemiface.explain.deletion import DELETION_STEPS, RANDOM_ORDERS, curve_against_random
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
    # Replacing the fill's pixels by the image's, in order, is inserting them.
    return curve_against_random(scorer, fill, x, attributions, target, steps, random_orders, seed)
