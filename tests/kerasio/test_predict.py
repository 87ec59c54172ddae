from __future__ import annotations

import numpy as np

from hemiface.kerasio import predict_batched, predict_probabilities, quiet_tensorflow


def _tiny_model():  # noqa: ANN202 - a keras.Model; Keras is imported here only
    quiet_tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def test_batches_give_what_one_call_gives() -> None:
    model = _tiny_model()
    images = np.random.default_rng(1).integers(0, 256, (7, 4, 4, 3)).astype(np.uint8)
    seen: list[tuple[int, int]] = []
    out = predict_batched(
        model, images, batch_size=3, divisor=255.0, progress=lambda d, t: seen.append((d, t))
    )
    whole = np.asarray(model(images.astype(np.float32) / np.float32(255.0), training=False))
    assert out.shape == (7, 1)
    np.testing.assert_allclose(out, whole, rtol=1e-6, atol=1e-7)
    assert seen == [(3, 7), (6, 7), (7, 7)]


def test_probabilities_are_a_float64_vector() -> None:
    model = _tiny_model()
    images = np.random.default_rng(2).random((5, 4, 4, 3)).astype(np.float32)
    p = predict_probabilities(model, images, batch_size=2)
    assert p.shape == (5,) and p.dtype == np.float64
    assert np.all((p > 0) & (p < 1))
