"""The settings of one explain run, as typed objects checked once when they are made.

`IGSettings` is what Integrated Gradients itself needs (steps, rule, batch size); it is
passed whole to plain IG, SmoothGrad and the sanity check, so all three integrate the same
way. `ExplainSettings` adds what `explain_image` does around IG (baselines, the class to
explain, SmoothGrad, sanity, deletion, the seed); its fields are what explain.json records.
The Enums are the choices the command line offers; their values are the names used
everywhere else (plain strings in the settings and in explain.json). The command line
imports this module to build its options, so it imports neither numpy nor OpenCV at
module level.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from hemiface.core.domain import LABELS
from hemiface.core.errors import HemifaceError

if TYPE_CHECKING:
    import numpy as np

    from hemiface.explain.integrated_gradients import Attribution, ProgressFn
    from hemiface.explain.scorer import ModelScorer, Target


class Rule(str, Enum):
    """Integration rules (rules.RULES)."""

    trapezoid = "trapezoid"
    riemann_left = "riemann_left"
    riemann_right = "riemann_right"
    riemann_middle = "riemann_middle"
    gauss_legendre = "gauss_legendre"


class Baseline(str, Enum):
    """IG baselines (baselines.BASELINES)."""

    black = "black"
    white = "white"
    blur = "blur"
    noise = "noise"


class Label(str, Enum):
    """The class to explain."""

    Left = "Left"
    Right = "Right"


def _check_steps(steps: int | str) -> None:
    if steps == "auto":
        return
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise HemifaceError(f"steps must be a positive whole number or 'auto', got {steps!r}")


@dataclass(frozen=True)
class IGSettings:
    """How the IG path integral is computed: steps (or "auto"), rule, points a batch."""

    steps: int | str = 64
    rule: str = "trapezoid"
    batch_size: int = 8

    def __post_init__(self) -> None:
        from hemiface.explain.rules import check_rule

        _check_steps(self.steps)
        check_rule(self.rule)
        if isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise HemifaceError(f"--batch-size must be at least 1, got {self.batch_size}")

    def attribute(
        self,
        scorer: ModelScorer,
        x: np.ndarray,
        baselines: np.ndarray,
        target: Target,
        progress: ProgressFn | None = None,
    ) -> Attribution:
        """Integrated Gradients of `scorer`'s `target` score at x with these settings."""
        from hemiface.explain.integrated_gradients import integrated_gradients

        return integrated_gradients(
            scorer,
            x,
            baselines,
            target,
            steps=self.steps,
            rule=self.rule,
            batch_size=self.batch_size,
            progress=progress,
        )


@dataclass(frozen=True)
class ExplainSettings:
    """Everything `explain_image` computes for each model, checked once on creation."""

    steps: int | str = 64
    rule: str = "trapezoid"
    baseline: str = "black"
    baseline_samples: int = 1
    target: str | None = None  # None: the predicted class
    smooth: int = 0  # SmoothGrad samples over IG; 0 = off
    smooth_sigma: float = 0.15
    batch_size: int = 8
    sanity: bool = False
    sanity_top_layers: int | None = None  # None: randomize all layers
    deletion: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        from hemiface.explain.baselines import check_baseline

        self.ig  # noqa: B018 - builds the IG settings, which check steps, rule, batch size
        check_baseline(self.baseline, self.baseline_samples)
        if self.smooth < 0 or self.smooth_sigma < 0:
            raise HemifaceError(
                f"--smooth and --smooth-sigma must be >= 0, got {self.smooth}, {self.smooth_sigma}"
            )
        if self.sanity_top_layers is not None and self.sanity_top_layers < 1:
            raise HemifaceError(
                f"--sanity-top-layers must be at least 1, got {self.sanity_top_layers}"
            )
        if self.target is not None and self.target not in LABELS:
            raise HemifaceError(f"--target must be Left or Right, got {self.target!r}")

    @property
    def ig(self) -> IGSettings:
        """The IG part, passed whole to IG, SmoothGrad and the sanity check."""
        return IGSettings(steps=self.steps, rule=self.rule, batch_size=self.batch_size)
