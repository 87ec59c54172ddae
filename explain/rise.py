"""RISE, Randomized Input Sampling for Explanation (Petsiuk et al., 2018).

N random masks: each a `grid` x `grid` field of cells kept with probability `keep`,
upsampled bilinearly to (grid + 1) cells' size and cropped at a random shift, so the masks
are smooth and not tied to the grid. The masked image is x * M + fill * (1 - M). The map is

    S = 1 / (N * keep) * sum_i (p_i - mean(p)) * M_i

the paper's estimator with the mean probability taken out: the paper's sum carries a
constant term (mean(p) * E[M] / keep) that would swamp every figure measured on |map|
(mask share, top-10 % regions); centring removes only that constant's expectation, the
ranking of pixels is the same. Positive: keeping the pixel raises P(Right).

The seed fixes every mask (the grids and shifts are drawn up front, the masks built a chunk
at a time from them): the same seed gives the same map, bit for bit whatever the threads and
interpreter batch, and to float rounding (regrouped sums) whatever the chunk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
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
class RiseSettings:
    masks: int = 1000
    grid: int = 7  # cells a side (the paper's 7 x 7 at 224 pixels)
    keep: float = 0.5  # probability that a cell is kept
    fill: str = "black"
    seed: int = 0
    chunk: int = DEFAULT_CHUNK

    def __post_init__(self) -> None:
        if self.masks < 1 or self.grid < 1 or self.chunk < 1:
            raise HemifaceError(
                f"--masks and --grid must be at least 1, got {self.masks}, {self.grid}"
            )
        if not 0.0 < self.keep < 1.0:
            raise HemifaceError(f"--keep must lie strictly between 0 and 1, got {self.keep}")


@dataclass(frozen=True)
class MaskPlan:
    """Every mask's random draws: which cells are kept and where the crop starts."""

    cells: np.ndarray  # (N, grid, grid) bool
    shifts: np.ndarray  # (N, 2) int: crop offset (y, x) in pixels
    cell_size: tuple[int, int]  # (height, width) of a cell in pixels

    @classmethod
    def draw(cls, settings: RiseSettings, height: int, width: int) -> MaskPlan:
        rng = np.random.default_rng(settings.seed)
        grid = settings.grid
        cells = rng.random((settings.masks, grid, grid)) < settings.keep
        cell_h, cell_w = -(-height // grid), -(-width // grid)
        shifts = np.stack(
            [
                rng.integers(0, cell_h, settings.masks),
                rng.integers(0, cell_w, settings.masks),
            ],
            axis=1,
        )
        return cls(cells, shifts, (cell_h, cell_w))

    def masks(self, start: int, stop: int, height: int, width: int) -> np.ndarray:
        """Masks start..stop-1 as float32 (n, H, W) in [0, 1]."""
        cell_h, cell_w = self.cell_size
        grid = self.cells.shape[1]
        big = ((grid + 1) * cell_w, (grid + 1) * cell_h)  # cv2 wants (width, height)
        out = np.empty((stop - start, height, width), dtype=np.float32)
        for i in range(start, stop):
            # As the paper's code: the grid stretched over grid + 1 cells, so that a crop
            # shifted by up to one cell stays inside.
            up = cv2.resize(self.cells[i].astype(np.float32), big, interpolation=cv2.INTER_LINEAR)
            dy, dx = self.shifts[i]
            out[i - start] = up[dy : dy + height, dx : dx + width]
        return out


def rise(
    scorer: BatchScorer,
    x: np.ndarray,
    fill: np.ndarray,
    settings: RiseSettings,
    progress: PerturbationProgress | None = None,
) -> PerturbationMaps:
    """RISE maps of every model of `scorer` for one preprocessed image x (H, W, 3)."""
    x = np.asarray(x, np.float32)
    fill = np.asarray(fill, np.float32)
    height, width = x.shape[:2]
    plan = MaskPlan.draw(settings, height, width)
    models = len(scorer.names)
    weighted = np.zeros((models, height, width))  # sum_i p_i M_i
    mask_sum = np.zeros((height, width))  # sum_i M_i
    p_right = scorer.probabilities(x[None])[0]

    current: dict[int, np.ndarray] = {}  # the chunk's masks, built once for both uses

    def make_chunk(start: int, stop: int) -> np.ndarray:
        current.clear()
        masks = current[start] = plan.masks(start, stop, height, width)
        images: np.ndarray = fill[None] + masks[..., None] * (x - fill)[None]
        return images

    def consume(start: int, answers: np.ndarray) -> None:
        masks = current[start]
        weighted[...] += np.tensordot(answers.T, masks, axes=1)
        mask_sum[...] += masks.sum(axis=0, dtype=np.float64)

    answers = score_chunks(
        scorer, make_chunk, settings.masks, settings.chunk, progress, consume=consume
    )
    mean_p = answers.mean(axis=0)  # (models,)
    maps = (weighted - mean_p[:, None, None] * mask_sum[None]) / (settings.masks * settings.keep)
    return PerturbationMaps(
        method="rise",
        names=list(scorer.names),
        p_right=np.asarray(p_right, np.float64),
        maps_right=maps,
        evaluations=settings.masks + 1,
        settings=asdict(settings),
    )
