"""Tiny Keras models for the explain tests (built in memory, a few hundred weights)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SIZE = 16


@pytest.fixture(scope="session")
def keras():
    import keras as keras_module

    return keras_module


@pytest.fixture(scope="session")
def linear_logit_model(keras):
    """p = sigmoid(w . x + b): IG along the straight path has a closed form."""
    rng = np.random.default_rng(1)
    inputs = keras.Input((SIZE, SIZE, 3))
    flat = keras.layers.Flatten()(inputs)
    output = keras.layers.Dense(1, activation="sigmoid")(flat)
    model = keras.Model(inputs, output, name="linear_logit")
    weights = rng.normal(0.0, 0.05, size=(SIZE * SIZE * 3, 1)).astype("float32")
    model.layers[-1].set_weights([weights, np.array([-0.3], dtype="float32")])
    return model


@pytest.fixture(scope="session")
def tiny_cnn(keras):
    """A small non-linear CNN with BatchNorm, like the reference models but tiny."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    output = keras.layers.Dense(1, activation="sigmoid")(h)
    model = keras.Model(inputs, output, name="tiny_cnn")
    last = model.layers[-1]
    kernel, _ = last.get_weights()
    last.set_weights([kernel * 4.0, np.array([0.1], dtype="float32")])
    return model


@pytest.fixture()
def image():
    return np.random.default_rng(7).uniform(0.0, 1.0, size=(SIZE, SIZE, 3)).astype("float32")
