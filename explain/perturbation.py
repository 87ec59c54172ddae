"""What the perturbation methods (occlusion, RISE) share: the scorer they call, the fill,
and the maps they return. numpy and OpenCV only: no TensorFlow, no matplotlib.

A perturbation method explains a model by forward passes alone: it changes parts of the
image and watches the probability move. The scorer is anything with `names` and
`probabilities(images) -> (N, models)`: the TFLite artifacts of a model set
(`hemiface.runtime.batched.ArtifactPool`, one column per model, a fused artifact filling
two columns from one invoke) or, in tests, a Keras model.

Maps are computed for what the scorer returns for the positive class: P(Right), or the
logit of P(Right) (explain/logits.py). The map of the class "Left" (score 1 - p, or -logit)
is the same map negated, exactly as for Integrated Gradients: one pass serves both classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hemiface.explain.baselines import make_baselines
from hemiface.explain.scorer import Target

# Images a chunk: the perturbed images of one chunk exist at once (64 x 224 x 224 x 3
# float32 is 38 MB), never all of them.
DEFAULT_CHUNK = 64

# progress(images scored so far, images in all)
PerturbationProgress = Callable[[int, int], None]


class BatchScorer(Protocol):
    """Probabilities P(Right) of one or more models for a batch of preprocessed images."""

    names: list[str]

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, len(names)) probabilities for N float images (N, H, W, 3)."""
        ...


@dataclass
class PerturbationMaps:
    """Maps of every model of a scorer for one image, in the scorer's units (P(Right) or its
    logit; `p_right` too)."""

    method: str  # "occlusion" or "rise"
    names: list[str]
    p_right: np.ndarray  # (models,) the score of the unperturbed image
    maps_right: np.ndarray  # (models, H, W): evidence for Right
    evaluations: int  # forward passes per model
    settings: dict

    def map_for(self, index: int, target: Target) -> np.ndarray:
        """The (H, W) map of model `index` toward `target` (Left: the Right map negated)."""
        return target.sign * self.maps_right[index]


def fill_image(kind: str, x: np.ndarray, low: float, high: float, seed: int) -> np.ndarray:
    """What a perturbation puts where it hides the image: one of IG's baselines
    (black, white, blur, noise), in model-input units, (H, W, 3) float32."""
    filled: np.ndarray = make_baselines(kind, x, low, high, samples=1, seed=seed)[0]
    return filled


def score_chunks(
    scorer: BatchScorer,
    make_chunk: Callable[[int, int], np.ndarray],
    total: int,
    chunk: int = DEFAULT_CHUNK,
    progress: PerturbationProgress | None = None,
    consume: Callable[[int, np.ndarray], None] | None = None,
) -> np.ndarray:
    """Probabilities of `total` perturbed images built `chunk` at a time by
    make_chunk(start, stop); `consume(start, probabilities)` sees each chunk's answers.
    Returns all (total, models) probabilities (small: a few numbers an image)."""
    parts = []
    for start in range(0, total, chunk):
        stop = min(total, start + chunk)
        answers = scorer.probabilities(make_chunk(start, stop))
        if consume is not None:
            consume(start, answers)
        parts.append(answers)
        if progress is not None:
            progress(stop, total)
    return np.concatenate(parts) if parts else np.zeros((0, len(scorer.names)))
