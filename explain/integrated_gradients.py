"""Integrated Gradients (Sundararajan et al., 2017), batched, with a completeness check.

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF(x' + a (x - x'))/dx_i da

The integral is a weighted sum over path points (see rules.py), evaluated `batch_size`
points at a time. With K baselines the K maps are averaged. Completeness says
sum_i IG_i = F(x) - F(x'); its relative error is reported for every map, and with
`steps="auto"` the steps double from 32 (reusing every gradient already computed for
the nested rules) until the error is under 5 % or 1024 steps are reached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hemiface.core.errors import HemifaceError
from hemiface.explain.rules import (
    NESTED_RULES,
    check_rule,
    n_points,
    path_points,
    refinement_points,
)
from hemiface.explain.scorer import ModelScorer, Target

AUTO_START_STEPS = 32
AUTO_MAX_STEPS = 1024
AUTO_TOLERANCE = 0.05
# Below this |F(x) - F(x')| the relative completeness error is meaningless (0/0).
MIN_SCORE_GAP = 1e-6

# Called with the number of path points just evaluated (for progress bars).
ProgressFn = Callable[[int], None]


@dataclass
class Attribution:
    """A signed attribution map toward `target` and the figures that say how far it holds."""

    attributions: np.ndarray  # (H, W, C) float32, toward the explained class
    target: str  # the class explained, "Left" or "Right"
    score_input: float  # F(x), the explained class's probability for the input
    score_baseline: float  # mean F(x') over the baselines
    sum_attributions: float
    completeness_error: float | None  # |sum - (F(x) - F(x'))| / |F(x) - F(x')|
    steps: int
    rule: str
    gradient_evaluations: int
    converged: bool  # completeness_error < tolerance (5 % by default), or undefined

    @property
    def score_gap(self) -> float:
        return self.score_input - self.score_baseline


def completeness_error(total: float, gap: float) -> float | None:
    if abs(gap) < MIN_SCORE_GAP:
        return None
    return abs(total - gap) / abs(gap)


def _weighted_gradient_sum(
    scorer: ModelScorer,
    x: np.ndarray,
    baseline: np.ndarray,
    alphas: np.ndarray,
    weights: np.ndarray,
    target: Target,
    batch_size: int,
    progress: ProgressFn | None,
) -> np.ndarray:
    total = np.zeros(x.shape, dtype=np.float64)
    for start in range(0, len(alphas), batch_size):
        stop = start + batch_size
        summed, _ = scorer.path_gradients(
            x, baseline, alphas[start:stop], weights[start:stop], target
        )
        total += summed
        if progress is not None:
            progress(len(alphas[start:stop]))
    return total


def _end_scores(
    scorer: ModelScorer, x: np.ndarray, baselines: np.ndarray, target: Target
) -> tuple[float, np.ndarray]:
    """F(x) and F(x'_k), via the path-gradient graph so no second graph is traced."""
    zero = np.zeros(1)
    baseline_scores = np.array(
        [scorer.path_gradients(x, b, zero, zero, target)[1][0] for b in baselines]
    )
    score_x = float(scorer.path_gradients(x, baselines[0], np.ones(1), zero, target)[1][0])
    return score_x, baseline_scores


def integrated_gradients(
    scorer: ModelScorer,
    x: np.ndarray,
    baselines: np.ndarray,
    target: Target,
    steps: int | str = 64,
    rule: str = "trapezoid",
    batch_size: int = 8,
    progress: ProgressFn | None = None,
    tolerance: float = AUTO_TOLERANCE,
    max_steps: int = AUTO_MAX_STEPS,
) -> Attribution:
    """IG of `scorer`'s `target` score at x (H, W, C) from baselines (K, H, W, C)."""
    check_rule(rule)
    if batch_size < 1:
        raise HemifaceError(f"batch size must be at least 1, got {batch_size}")
    auto = steps == "auto"
    if not auto and (not isinstance(steps, int) or steps < 1):
        raise HemifaceError(f"steps must be a positive integer or 'auto', got {steps!r}")
    x = np.asarray(x, dtype=np.float32)
    baselines = np.asarray(baselines, dtype=np.float32)
    if baselines.ndim == x.ndim:
        baselines = baselines[None]
    if baselines.shape[1:] != x.shape:
        raise HemifaceError(f"baseline shape {baselines.shape[1:]} differs from input {x.shape}")

    score_x, baseline_scores = _end_scores(scorer, x, baselines, target)
    gap = score_x - float(baseline_scores.mean())
    n = AUTO_START_STEPS if auto else int(steps)
    evaluations = 0
    # Per baseline, the weighted path sum of gradients (the integral's estimate).
    path_sums = []
    for baseline in baselines:
        alphas, weights = path_points(rule, n)
        path_sums.append(
            _weighted_gradient_sum(
                scorer, x, baseline, alphas, weights, target, batch_size, progress
            )
        )
        evaluations += len(alphas)

    def attribution_of(sums: list[np.ndarray]) -> np.ndarray:
        maps = [(x - b).astype(np.float64) * s for b, s in zip(baselines, sums, strict=True)]
        return np.mean(maps, axis=0)

    attributions = attribution_of(path_sums)
    error = completeness_error(float(attributions.sum()), gap)
    while auto and error is not None and error >= tolerance and 2 * n <= max_steps:
        if rule in NESTED_RULES:
            new_alphas = refinement_points(n)
            new_weights = np.full(n, 1.0 / (2 * n))
            path_sums = [
                s / 2.0
                + _weighted_gradient_sum(
                    scorer, x, b, new_alphas, new_weights, target, batch_size, progress
                )
                for b, s in zip(baselines, path_sums, strict=True)
            ]
            evaluations += n * len(baselines)
            n *= 2
        else:
            n *= 2
            alphas, weights = path_points(rule, n)
            path_sums = [
                _weighted_gradient_sum(scorer, x, b, alphas, weights, target, batch_size, progress)
                for b in baselines
            ]
            evaluations += len(alphas) * len(baselines)
        attributions = attribution_of(path_sums)
        error = completeness_error(float(attributions.sum()), gap)

    return Attribution(
        attributions=attributions.astype(np.float32),
        target=target.label,
        score_input=score_x,
        score_baseline=float(baseline_scores.mean()),
        sum_attributions=float(attributions.sum()),
        completeness_error=error,
        steps=n,
        rule=rule,
        gradient_evaluations=evaluations,
        converged=error is None or error < tolerance,
    )


def expected_evaluations(rule: str, steps: int | str, n_baselines: int = 1) -> int:
    """Path points a fixed-step run costs (auto: the first round's cost)."""
    n = AUTO_START_STEPS if steps == "auto" else int(steps)
    return n_points(rule, n) * n_baselines
