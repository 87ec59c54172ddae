"""Occlusion sensitivity (Zeiler & Fergus, 2014): slide a window of fill over the image and
record how far each position lowers the probability.

For each window position k, the occluded image x_k is x with the window replaced by the
fill (one of IG's baselines: black by default, as IG's default baseline). The map at a pixel
is the mean of p(x) - p(x_k) over the windows that cover it: positive where hiding the
pixel lowers P(Right), i.e. evidence for Right. Windows start every `stride` pixels and a
last row and column of windows is added at the border, so every pixel is covered.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hemiface.explain.perturbation import (
    DEFAULT_CHUNK,
    BatchScorer,
    PerturbationMaps,
    PerturbationProgress,
    score_chunks,
)
from hemiface.runtime.errors import HemifaceError


@dataclass(frozen=True)
class OcclusionSettings:
    window: int = 16  # pixels of the model input, square
    stride: int = 8
    fill: str = "black"  # one of IG's baselines: black, white, blur, noise
    chunk: int = DEFAULT_CHUNK

    def __post_init__(self) -> None:
        if self.window < 1 or self.stride < 1 or self.chunk < 1:
            raise HemifaceError(
                f"--window, --stride and the chunk must be at least 1, got "
                f"{self.window}, {self.stride}, {self.chunk}"
            )


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Start offsets along one side: every `stride` pixels, plus one flush with the end."""
    if window > size:
        raise HemifaceError(f"the occlusion window ({window} px) is larger than the input ({size})")
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def occlusion(
    scorer: BatchScorer,
    x: np.ndarray,
    fill: np.ndarray,
    settings: OcclusionSettings,
    progress: PerturbationProgress | None = None,
) -> PerturbationMaps:
    """Occlusion maps of every model of `scorer` for one preprocessed image x (H, W, 3)."""
    x = np.asarray(x, np.float32)
    fill = np.asarray(fill, np.float32)
    height, width = x.shape[:2]
    w = settings.window
    positions = [
        (top, left)
        for top in window_starts(height, w, settings.stride)
        for left in window_starts(width, w, settings.stride)
    ]
    p_right = scorer.probabilities(x[None])[0]

    def make_chunk(start: int, stop: int) -> np.ndarray:
        images = np.repeat(x[None], stop - start, axis=0)
        for i, (top, left) in enumerate(positions[start:stop]):
            images[i, top : top + w, left : left + w] = fill[top : top + w, left : left + w]
        return images

    answers = score_chunks(scorer, make_chunk, len(positions), settings.chunk, progress)
    drops = p_right[None, :] - answers  # (positions, models)
    total = np.zeros((len(scorer.names), height, width))
    covered = np.zeros((height, width))
    for (top, left), drop in zip(positions, drops, strict=True):
        total[:, top : top + w, left : left + w] += drop[:, None, None]
        covered[top : top + w, left : left + w] += 1.0
    return PerturbationMaps(
        method="occlusion",
        names=list(scorer.names),
        p_right=np.asarray(p_right, np.float64),
        maps_right=total / covered[None],
        evaluations=len(positions) + 1,
        settings=asdict(settings),
    )
