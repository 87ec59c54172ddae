"""Trust figures on a tiny CNN trained on synthetic droop faces with ground-truth masks.

The faces are simplified (no roll, shift, clutter, noise) so that a ~1000-weight CNN
learns the task in seconds; the droop masks are what the synth package draws.
"""

from __future__ import annotations

import numpy as np
import pytest

SIZE = 48
EASY = dict(
    roll=0.0,
    shift=(0.0, 0.0),
    scale=1.0,
    clutter=0,
    noise=0.0,
    blur=0.0,
    light_strength=0.0,
    shadow_depth=0.0,
)


def synthetic_faces(rng, count):
    from hemiface.synth.faces import render_face

    faces = [
        render_face(rng, "Right" if i % 2 else "Left", 1.0, SIZE, **EASY) for i in range(count)
    ]
    images = np.array([f.image / 255.0 for f in faces], dtype="float32")
    labels = np.array([f.label == "Right" for f in faces], dtype="float32")
    return images, labels, np.array([f.mask for f in faces])


def small_cnn(keras, seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(h)
    h = keras.layers.Flatten()(h)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(h))


@pytest.fixture(scope="module")
def trained(keras):
    rng = np.random.default_rng(0)
    images, labels, _ = synthetic_faces(rng, 700)
    test_images, test_labels, test_masks = synthetic_faces(rng, 8)
    model = small_cnn(keras, 0)
    model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, epochs=10, batch_size=32, verbose=0)
    accuracy = model.evaluate(test_images, test_labels, verbose=0)[1]
    return model, test_images, test_masks, accuracy


def explain_all(model, images, steps=32):
    from hemiface.explain.baselines import make_baselines
    from hemiface.explain.integrated_gradients import integrated_gradients
    from hemiface.explain.scorer import ModelScorer, Target

    scorer = ModelScorer(model)
    results = []
    for x in images:
        target = Target.predicted(float(scorer.probabilities(x[None])[0]))
        baseline = make_baselines("black", x)
        results.append(integrated_gradients(scorer, x, baseline, target, steps, batch_size=33))
    return results


@pytest.mark.slow
def test_trained_model_attributes_inside_the_lesion_mask(trained, keras):
    from hemiface.explain.metrics import mask_metrics

    model, images, masks, accuracy = trained
    assert accuracy >= 0.85  # the model learned the task, so its maps mean something
    results = explain_all(model, images, steps="auto")
    ratios = [
        mask_metrics(r.attributions, m)["ratio_to_area_share"]
        for r, m in zip(results, masks, strict=True)
    ]
    assert all(r.converged and r.completeness_error < 0.05 for r in results)
    assert np.mean(ratios) > 3.0  # clearly more than the mask's share of the image
    untrained = explain_all(small_cnn(keras, 1), images)
    untrained_ratios = [
        mask_metrics(r.attributions, m)["ratio_to_area_share"]
        for r, m in zip(untrained, masks, strict=True)
    ]
    assert np.mean(ratios) > 1.3 * np.mean(untrained_ratios)


@pytest.mark.slow
def test_randomized_model_maps_correlate_weakly(trained):
    from hemiface.explain.baselines import make_baselines
    from hemiface.explain.sanity import layers_with_weights, randomize_model, sanity_check
    from hemiface.explain.scorer import Target
    from hemiface.explain.settings import IGSettings

    model, images, _, _ = trained
    reference = explain_all(model, images[:3])
    rhos = []
    for seed, (x, attr) in enumerate(zip(images[:3], reference, strict=True)):
        result = sanity_check(
            model,
            x,
            make_baselines("black", x),
            Target(attr.target),
            attr,
            IGSettings(steps=32),
            top_layers=None,
            seed=seed,
        )
        rhos.append((result["spearman_abs"], result["spearman_signed"]))
    rho_abs, rho_signed = np.mean(rhos, axis=0)
    assert rho_abs < 0.5 and abs(rho_signed) < 0.2
    # Cascading: randomizing only the top layer keeps every other layer's weights.
    top = randomize_model(model, top_layers=1, seed=5)
    original, randomized = layers_with_weights(model), layers_with_weights(top)
    for before, after in zip(original[:-1], randomized[:-1], strict=True):
        for a, b in zip(before.get_weights(), after.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    assert not np.allclose(original[-1].get_weights()[0], randomized[-1].get_weights()[0])


@pytest.mark.slow
def test_deletion_of_attributed_pixels_beats_random_order(trained):
    from hemiface.explain.deletion import deletion_curve
    from hemiface.explain.scorer import ModelScorer, Target

    model, images, _, _ = trained
    scorer = ModelScorer(model)
    results = explain_all(model, images[:4])
    ratios = []
    for x, attr in zip(images[:4], results, strict=True):
        curve = deletion_curve(
            scorer, x, attr.attributions, np.zeros_like(x), Target(attr.target), steps=10
        )
        assert curve["scores"][0] == pytest.approx(attr.score_input, abs=1e-5)
        ratios.append(curve["auc_ratio_to_random"])
    assert np.mean(ratios) < 0.9
