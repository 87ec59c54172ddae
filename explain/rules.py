"""Integration rules for the Integrated Gradients path integral over alpha in [0, 1].

Each rule turns a step count n into points `alphas` and `weights` with
sum(weights) == 1, so that  integral_0^1 g(a) da  ~=  sum_k weights[k] * g(alphas[k]).
The weights are computed once for the whole path, before it is cut into batches, so
batching cannot shift an end-point weight to the wrong point (the TF tutorial's
trapezoid once had exactly that bug).

Trapezoid and the left/right Riemann sums are nested: the points for 2n steps are those
for n plus the odd multiples of 1/(2n), and  S_2n = S_n / 2 + sum(new) / (2n).
`--steps auto` uses this to double the steps without recomputing a gradient.
"""

from __future__ import annotations

import numpy as np

from hemiface.core.errors import HemifaceError

RULES = ("trapezoid", "riemann_left", "riemann_right", "riemann_middle", "gauss_legendre")
NESTED_RULES = ("trapezoid", "riemann_left", "riemann_right")


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise HemifaceError(f"unknown integration rule {rule!r}; choose one of {', '.join(RULES)}")
    return rule


def path_points(rule: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(alphas, weights) in float64 for `steps` intervals of [0, 1]."""
    check_rule(rule)
    if steps < 1:
        raise HemifaceError(f"steps must be at least 1, got {steps}")
    n = int(steps)
    if rule == "trapezoid":
        alphas = np.arange(n + 1, dtype=np.float64) / n
        weights = np.full(n + 1, 1.0 / n)
        weights[[0, -1]] = 0.5 / n
    elif rule == "riemann_left":
        alphas = np.arange(n, dtype=np.float64) / n
        weights = np.full(n, 1.0 / n)
    elif rule == "riemann_right":
        alphas = np.arange(1, n + 1, dtype=np.float64) / n
        weights = np.full(n, 1.0 / n)
    elif rule == "riemann_middle":
        alphas = (np.arange(n, dtype=np.float64) + 0.5) / n
        weights = np.full(n, 1.0 / n)
    else:  # gauss_legendre: n nodes, exact for polynomials of degree 2n - 1
        nodes, node_weights = np.polynomial.legendre.leggauss(n)
        alphas = (nodes + 1.0) / 2.0
        weights = node_weights / 2.0
    return alphas, weights


def n_points(rule: str, steps: int) -> int:
    """How many gradient evaluations `steps` costs under `rule`."""
    return steps + 1 if rule == "trapezoid" else steps


def refinement_points(steps: int) -> np.ndarray:
    """Points added when a nested rule goes from `steps` to 2 * `steps`."""
    return (2.0 * np.arange(steps, dtype=np.float64) + 1.0) / (2.0 * steps)
