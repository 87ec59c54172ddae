"""SmoothGrad over Integrated Gradients (Smilkov et al., 2017): average IG maps of noisy copies.

Each copy is x + N(0, (sigma * range)^2), range being the input's value range (1.0 for
pixels / 255), left unclipped as in the paper. The baselines stay those of the clean
input. Completeness then compares the averaged map's sum with the mean of
F(x + noise) - F(x') over the copies.
"""

from __future__ import annotations

import numpy as np

from hemiface.core.errors import HemifaceError
from hemiface.explain.integrated_gradients import Attribution, ProgressFn, completeness_error
from hemiface.explain.scorer import ModelScorer, Target
from hemiface.explain.settings import IGSettings

DEFAULT_SIGMA = 0.15  # fraction of the input range; the SmoothGrad paper's 10-20 % band


def smooth_integrated_gradients(
    scorer: ModelScorer,
    x: np.ndarray,
    baselines: np.ndarray,
    target: Target,
    ig: IGSettings,
    samples: int,
    sigma: float = DEFAULT_SIGMA,
    value_range: float = 1.0,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> Attribution:
    """IG with settings `ig`, averaged over `samples` noisy copies of x."""
    if samples < 1:
        raise HemifaceError(f"--smooth needs at least 1 sample, got {samples}")
    if sigma < 0:
        raise HemifaceError(f"SmoothGrad sigma must be >= 0, got {sigma}")
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float32)
    runs = []
    for _ in range(samples):
        noise = rng.normal(0.0, sigma * value_range, size=x.shape).astype(np.float32)
        runs.append(ig.attribute(scorer, x + noise, baselines, target, progress))
    attributions = np.mean([run.attributions.astype(np.float64) for run in runs], axis=0)
    score_input = float(np.mean([run.score_input for run in runs]))
    score_baseline = runs[0].score_baseline
    total = float(attributions.sum())
    error = completeness_error(total, score_input - score_baseline)
    return Attribution(
        attributions=attributions.astype(np.float32),
        target=target.label,
        score_input=score_input,
        score_baseline=score_baseline,
        sum_attributions=total,
        completeness_error=error,
        steps=max(run.steps for run in runs),
        rule=ig.rule,
        gradient_evaluations=sum(run.gradient_evaluations for run in runs),
        converged=all(run.converged for run in runs),
    )
