"""Integration rules, baselines and the trust metrics (numpy only, no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from hemiface.explain.baselines import make_baselines
from hemiface.explain.metrics import laterality, mask_metrics, rank, spearman
from hemiface.explain.rules import NESTED_RULES, RULES, path_points, refinement_points


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("steps", [1, 7, 64])
def test_weights_sum_to_one_and_integrate_a_cubic(rule, steps):
    alphas, weights = path_points(rule, steps)
    assert weights.sum() == pytest.approx(1.0)
    assert np.all((alphas >= 0) & (alphas <= 1))
    estimate = float((weights * alphas**3).sum())
    tolerance = {"gauss_legendre": 1e-12 if steps >= 2 else 0.3}.get(rule, 1.0 / steps)
    assert estimate == pytest.approx(0.25, abs=tolerance)


def test_trapezoid_weights_are_half_at_the_ends():
    alphas, weights = path_points("trapezoid", 4)
    np.testing.assert_allclose(alphas, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(weights, [0.125, 0.25, 0.25, 0.25, 0.125])


@pytest.mark.parametrize("rule", NESTED_RULES)
def test_nested_rules_double_by_adding_the_odd_points(rule):
    n = 8
    old_alphas, old_weights = path_points(rule, n)
    new_alphas, new_weights = path_points(rule, 2 * n)
    merged = np.sort(np.concatenate([old_alphas, refinement_points(n)]))
    np.testing.assert_allclose(merged, np.sort(new_alphas))
    f = np.cos  # S_2n = S_n / 2 + sum(f(new)) / (2n)
    refined = (old_weights * f(old_alphas)).sum() / 2 + f(refinement_points(n)).sum() / (2 * n)
    assert refined == pytest.approx((new_weights * f(new_alphas)).sum(), abs=1e-12)


def test_baselines_have_the_right_values():
    x = np.random.default_rng(0).uniform(0, 1, (20, 30, 3)).astype(np.float32)
    assert np.all(make_baselines("black", x) == 0.0)
    assert np.all(make_baselines("white", x, 0.0, 1.0) == 1.0)
    blurred = make_baselines("blur", x)[0]
    assert blurred.shape == x.shape and blurred.std() < x.std() / 3
    noise = make_baselines("noise", x, samples=4, seed=3)
    assert noise.shape == (4, *x.shape) and noise.min() >= 0 and noise.max() <= 1
    assert not np.allclose(noise[0], noise[1])
    np.testing.assert_array_equal(noise, make_baselines("noise", x, samples=4, seed=3))


def test_laterality_follows_the_patient_side_convention():
    attributions = np.zeros((10, 10, 3))
    attributions[:, :3, 0] = 1.0  # positive evidence on the image's left
    attributions[:, 7, 0] = -5.0  # negative evidence does not count
    attributions[:, 8:, 1] = 0.5
    result = laterality(attributions)
    assert result["midline_x"] == 5.0
    assert result["image_left_share"] == pytest.approx(30 / 40)
    assert result["points_to_patient_side"] == "Right"  # image left = patient's right
    assert "patient's RIGHT" in result["convention"]
    shifted = laterality(attributions, midline_x=2.0)
    assert shifted["image_left_share"] == pytest.approx(20 / 40)
    assert laterality(np.zeros((4, 4, 3)))["points_to_patient_side"] is None


def test_mask_metrics_and_pointing_game():
    attributions = np.zeros((10, 10, 3))
    attributions[2:4, 2:4] = 1.0
    attributions[9, 9] = -0.5  # |attr| counts
    attributions[2, 2, 0] = 3.0  # the peak
    mask = np.zeros((10, 10), bool)
    mask[2:4, 2:4] = True
    result = mask_metrics(attributions, mask)
    total = 12 + 2 + 1.5
    assert result["share_inside_mask"] == pytest.approx(14 / total)
    assert result["mask_area_share"] == pytest.approx(0.04)
    assert result["ratio_to_area_share"] == pytest.approx(14 / total / 0.04)
    assert result["pointing_game_hit"] is True
    mask_elsewhere = np.zeros((10, 10), bool)
    mask_elsewhere[6:9, 6:9] = True
    assert mask_metrics(attributions, mask_elsewhere)["pointing_game_hit"] is False


def test_spearman_with_ties_matches_the_textbook():
    np.testing.assert_allclose(rank(np.array([10, 20, 20, 5])), [2, 3.5, 3.5, 1])
    a = np.arange(50.0)
    assert spearman(a, a**3) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, np.ones(50)) is None
    rng = np.random.default_rng(0)
    assert abs(spearman(rng.normal(size=5000), rng.normal(size=5000))) < 0.05
