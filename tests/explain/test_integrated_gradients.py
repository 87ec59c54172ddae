"""Integrated Gradients against closed forms, completeness, symmetry and batching."""

from __future__ import annotations

import numpy as np
import pytest

from hemiface.core.errors import HemifaceError
from hemiface.explain.baselines import make_baselines
from hemiface.explain.integrated_gradients import integrated_gradients
from hemiface.explain.rules import RULES
from hemiface.explain.scorer import ModelScorer, Target


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def closed_form_ig(model, x, baseline):
    """IG of sigmoid(w.x + b) along the straight path, exactly:
    attr_i = w_i (x_i - x'_i) * (F(x) - F(x')) / (w . (x - x'))."""
    kernel, bias = model.layers[-1].get_weights()
    w = kernel[:, 0].astype(np.float64).reshape(x.shape)
    delta = (x - baseline).astype(np.float64)
    z_x = float((w * x).sum() + bias[0])
    z_b = float((w * baseline).sum() + bias[0])
    return w * delta * (sigmoid(z_x) - sigmoid(z_b)) / float((w * delta).sum())


@pytest.mark.parametrize("rule", RULES)
def test_linear_logit_model_matches_the_closed_form(linear_logit_model, image, rule):
    scorer = ModelScorer(linear_logit_model)
    baseline = make_baselines("black", image)
    result = integrated_gradients(scorer, image, baseline, Target("Right"), 128, rule, 16)
    expected = closed_form_ig(linear_logit_model, image, baseline[0])
    scale = np.abs(expected).max()
    assert np.abs(result.attributions - expected).max() < 0.01 * scale
    assert result.target == "Right"


def test_gauss_legendre_is_exact_with_few_steps(linear_logit_model, image):
    scorer = ModelScorer(linear_logit_model)
    baseline = make_baselines("white", image)
    result = integrated_gradients(scorer, image, baseline, Target("Right"), 12, "gauss_legendre", 5)
    expected = closed_form_ig(linear_logit_model, image, baseline[0])
    assert np.allclose(result.attributions, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    assert result.completeness_error < 1e-3


@pytest.mark.parametrize("rule", RULES)
def test_completeness_within_one_percent_on_a_cnn(tiny_cnn, image, rule):
    scorer = ModelScorer(tiny_cnn)
    result = integrated_gradients(
        scorer, image, make_baselines("black", image), Target("Right"), 256, rule, 64
    )
    assert abs(result.score_gap) > 0.01  # the check below means something
    assert result.completeness_error < 0.01
    assert result.gradient_evaluations == (257 if rule == "trapezoid" else 256)


def test_left_is_the_negated_right_map(tiny_cnn, image):
    scorer = ModelScorer(tiny_cnn)
    baseline = make_baselines("blur", image)
    right = integrated_gradients(scorer, image, baseline, Target("Right"), 20, batch_size=7)
    left = integrated_gradients(scorer, image, baseline, Target("Left"), 20, batch_size=7)
    np.testing.assert_array_equal(left.attributions, -right.attributions)
    assert left.target == "Left"
    assert left.score_input == pytest.approx(1.0 - right.score_input, abs=1e-6)


@pytest.mark.parametrize("batch_size", [1, 3, 8, 64])
def test_batching_does_not_change_the_result(tiny_cnn, image, batch_size):
    scorer = ModelScorer(tiny_cnn)
    baseline = make_baselines("black", image)
    reference = integrated_gradients(scorer, image, baseline, Target("Right"), 21, batch_size=22)
    result = integrated_gradients(
        scorer, image, baseline, Target("Right"), 21, batch_size=batch_size
    )
    scale = np.abs(reference.attributions).max()
    np.testing.assert_allclose(result.attributions, reference.attributions, atol=1e-5 * scale)


def test_trapezoid_weights_hold_across_batch_boundaries(tiny_cnn, image):
    """10 steps (11 points) in batches of 3: the result equals a hand-written trapezoid."""
    scorer = ModelScorer(tiny_cnn)
    baseline = make_baselines("black", image)[0]
    target = Target("Right")
    grads = []
    for k in range(11):
        g, _ = scorer.path_gradients(image, baseline, np.array([k / 10]), np.ones(1), target)
        grads.append(g)
    integral = (0.5 * grads[0] + sum(grads[1:10]) + 0.5 * grads[10]) / 10
    expected = (image - baseline) * integral
    result = integrated_gradients(scorer, image, baseline, target, 10, "trapezoid", 3)
    np.testing.assert_allclose(result.attributions, expected, atol=1e-6 * np.abs(expected).max())


def test_auto_steps_double_until_completeness_holds(tiny_cnn, image):
    scorer = ModelScorer(tiny_cnn)
    baseline = make_baselines("black", image)
    result = integrated_gradients(scorer, image, baseline, Target("Right"), "auto", batch_size=32)
    assert result.steps in (32, 64, 128, 256, 512, 1024)
    assert result.converged and result.completeness_error < 0.05
    # Nested trapezoid refinement reuses every point: n + 1 evaluations in all.
    assert result.gradient_evaluations == result.steps + 1
    fixed = integrated_gradients(scorer, image, baseline, Target("Right"), result.steps)
    np.testing.assert_allclose(
        result.attributions, fixed.attributions, atol=1e-5 * np.abs(fixed.attributions).max()
    )


def test_noise_baselines_are_averaged(tiny_cnn, image):
    scorer = ModelScorer(tiny_cnn)
    baselines = make_baselines("noise", image, samples=3, seed=1)
    target = Target("Left")
    averaged = integrated_gradients(scorer, image, baselines, target, 16)
    single = [integrated_gradients(scorer, image, b, target, 16).attributions for b in baselines]
    np.testing.assert_allclose(
        averaged.attributions, np.mean(single, axis=0), atol=1e-6 * np.abs(single).max()
    )
    assert averaged.gradient_evaluations == 3 * 17


def test_bad_arguments_are_refused(tiny_cnn, image):
    scorer = ModelScorer(tiny_cnn)
    baseline = make_baselines("black", image)
    with pytest.raises(HemifaceError, match="rule"):
        integrated_gradients(scorer, image, baseline, Target("Right"), 8, "simpson")
    with pytest.raises(HemifaceError, match="steps"):
        integrated_gradients(scorer, image, baseline, Target("Right"), 0)
    with pytest.raises(HemifaceError, match="Left or Right"):
        Target("Up")
    with pytest.raises(HemifaceError, match="noise"):
        make_baselines("black", image, samples=4)


def test_smoothgrad_over_ig_averages_noisy_copies(tiny_cnn, image):
    from hemiface.explain.settings import IGSettings
    from hemiface.explain.smoothgrad import smooth_integrated_gradients

    scorer = ModelScorer(tiny_cnn)
    baseline = make_baselines("black", image)
    target = Target("Right")
    plain = integrated_gradients(scorer, image, baseline, target, 32)
    no_noise = smooth_integrated_gradients(
        scorer, image, baseline, target, IGSettings(steps=32), 3, sigma=0.0
    )
    np.testing.assert_allclose(no_noise.attributions, plain.attributions, rtol=1e-6, atol=1e-9)
    smoothed = smooth_integrated_gradients(scorer, image, baseline, target, IGSettings(), 4, 0.2)
    assert not np.allclose(smoothed.attributions, plain.attributions)
    assert smoothed.gradient_evaluations == 4 * 65
    # Completeness against the mean score of the noisy copies still holds.
    assert smoothed.completeness_error < 0.02
    with pytest.raises(HemifaceError, match="--smooth"):
        smooth_integrated_gradients(scorer, image, baseline, target, IGSettings(), 0)
