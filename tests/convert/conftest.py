"""Tiny real Keras models, real image folders and one converted model set, shared by the
convert tests (session-scoped: TensorFlow work is the slow part)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SIZE = 32


def build_tiny_model(seed: int = 0, hidden: int = 64):  # noqa: ANN201 - keras.Model
    """Conv -> mean -> Dense(hidden) -> Dense(1, sigmoid). The 64x64 dense kernel is large
    enough for dynamic-range quantization (and so for FULLY_CONNECTED v12)."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(64, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(hidden, activation="relu")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def write_images(folder: Path, per_class: int = 12, seed: int = 1) -> Path:
    """Real JPEG and PNG files in Left/ and Right/, darker on one side of the image."""
    import cv2

    rng = np.random.default_rng(seed)
    for label in ("Left", "Right"):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
            if label == "Left":
                image[:, :20] //= 3
            else:
                image[:, 20:] //= 3
            suffix = ".jpg" if i % 2 == 0 else ".png"
            cv2.imwrite(str(folder / label / f"{i:03d}{suffix}"), image)
    return folder


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    model = build_tiny_model()
    model.save(folder / "tiny.keras")
    model.save(folder / "tiny.h5")
    return folder


@pytest.fixture(scope="session")
def images_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_images(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def model_set(tmp_path_factory: pytest.TempPathFactory, models_dir: Path, images_dir: Path):  # noqa: ANN201
    """All four formats of the tiny model, converted once: (summary, out folder)."""
    from hemiface.convert.pipeline import ConvertSettings, convert_models

    out = tmp_path_factory.mktemp("modelset")
    summary = convert_models([models_dir / "tiny.keras"], out, ConvertSettings(calib=images_dir))
    return summary, out


@pytest.fixture
def image_writer():  # noqa: ANN201
    """`write_images(folder, per_class, seed)` for tests that need their own folder."""
    return write_images
