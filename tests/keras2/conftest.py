"""Keras 2 files built at test time with tf-keras, as a Colab-era notebook saved them.

- `mobilenetv2_base_model.h5`: MobileNetV2 (alpha 0.35, no top, random weights), frozen,
  + GlobalAveragePooling2D + Dropout + Dense(1, sigmoid). Random weights need care to
  stand in for a trained model: with identity BatchNormalization the activations vanish
  (p = 0.5 for every image); with statistics taken from a batch (mean and variance) the
  function is chaotic (p jumps by 0.46 between neighbouring IG path points, and float32
  rounding moves p by 3e-4 in Keras itself). Scaling each channel by its root mean square
  on a batch (moving mean 0, moving variance = E[x^2]) gives a smooth, well-conditioned
  model: completeness within 0.01 % at 128 steps, float32 TFLite within 2e-6 of Keras;
- `cnn_stroke_model.h5` and `cnn_stroke_model.keras`: a Sequential CNN with
  `input_shape=` on its first layer (the Keras-2 `.keras` is what Keras 3 cannot read);
- `cnn_savedmodel/`: the CNN saved as a SavedModel folder (`save_format="tf"`).

Small inputs (32x32) keep the tests fast; the toolkit reads the size from each model.
Images are PNGs (lossless), so the runtime's tensors equal the notebook's exactly and
|dp| measures conversion alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SIZE = 32
MOBILENET = "mobilenetv2_base_model"
CNN = "cnn_stroke_model"


def calibrate_batchnorm(model, images: np.ndarray) -> None:  # noqa: ANN001 - a tf_keras model
    """Make every BatchNormalization divide its input by the input's root mean square on
    `images`, per channel (moving mean 0, moving variance E[x^2]), without centring."""
    import tf_keras

    layers = [m for m in model.submodules if isinstance(m, tf_keras.layers.BatchNormalization)]
    for layer in layers:
        layer.momentum = 0.0
    model(images, training=True)  # momentum 0: the moving statistics become the batch's
    for layer in layers:
        layer.momentum = 0.99
        gamma, beta, mean, variance = layer.get_weights()
        layer.set_weights([gamma, beta, np.zeros_like(mean), variance + mean**2])


def calibration_images(seed: int = 0, count: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 1, (count, SIZE, SIZE, 3)).astype("float32")
    images[: count // 2, :, : SIZE // 2] *= 0.3
    images[count // 2 :, :, SIZE // 2 :] *= 0.3
    return images


def build_mobilenet():  # noqa: ANN201 - a tf_keras model
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    base = tf_keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 3), alpha=0.35, include_top=False, weights=None
    )
    calibrate_batchnorm(base, calibration_images())
    base.trainable = False
    model = tf_keras.Sequential(
        [
            base,
            tf_keras.layers.GlobalAveragePooling2D(),
            tf_keras.layers.Dropout(0.2),
            tf_keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    # A head whose logits spread by about 1.5 around 0 on the images.
    features = tf_keras.Sequential(model.layers[:2])(calibration_images(1, 16)).numpy()
    kernel = np.random.default_rng(1).normal(0.0, 1.0, (features.shape[1], 1))
    kernel *= 1.5 / (float(np.std((features - features.mean(0)) @ kernel)) + 1e-9)
    bias = -(features.mean(0) @ kernel)
    model.layers[-1].set_weights([kernel.astype("float32"), bias.astype("float32")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def build_cnn():  # noqa: ANN201 - a tf_keras model
    import tf_keras

    tf_keras.utils.set_random_seed(2)
    layers = tf_keras.layers
    model = tf_keras.Sequential(
        [
            layers.Conv2D(8, 3, activation="relu", input_shape=(SIZE, SIZE, 3)),
            layers.MaxPooling2D(),
            layers.Conv2D(16, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(16, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def write_pngs(folder: Path, per_class: int = 8, seed: int = 3) -> Path:
    """Left/ and Right/ PNGs, darker on one half, a little larger than the models' input."""
    import cv2

    rng = np.random.default_rng(seed)
    for label in ("Left", "Right"):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
            if label == "Left":
                image[:, :18] //= 3
            else:
                image[:, 18:] //= 3
            cv2.imwrite(str(folder / label / f"{i:03d}.png"), image)
    return folder


@pytest.fixture(scope="session")
def keras2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of Keras 2 files (see the module docstring)."""
    import warnings

    folder = tmp_path_factory.mktemp("keras2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "HDF5 is legacy": the users' format, on purpose
        build_mobilenet().save(folder / f"{MOBILENET}.h5")
        cnn = build_cnn()
        cnn.save(folder / f"{CNN}.h5")
        cnn.save(folder / f"{CNN}.keras")
        cnn.save(folder / "cnn_savedmodel", save_format="tf")
    return folder


@pytest.fixture(scope="session")
def pngs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pngs(tmp_path_factory.mktemp("pngs"))


@pytest.fixture(scope="session")
def png_tensors(pngs_dir: Path) -> tuple[list[Path], np.ndarray]:
    """The PNGs and their tensors as the runtime (and the notebook) makes them."""
    from hemiface.runtime.images import read_image
    from hemiface.runtime.manifest import Preprocessing
    from hemiface.runtime.preprocess import to_tensor

    paths = sorted(pngs_dir.rglob("*.png"))
    spec = Preprocessing(width=SIZE, height=SIZE)
    return paths, np.concatenate([to_tensor(read_image(p), spec) for p in paths])


def _keras2_predictions(path: Path, tensors: np.ndarray) -> np.ndarray:
    import tf_keras

    model = tf_keras.models.load_model(path, compile=False)
    return np.asarray(model(tensors, training=False)).reshape(-1).astype(np.float64)


@pytest.fixture(scope="session")
def keras2_predict():  # noqa: ANN201 - a function
    """`predict(path, tensors)`: what the notebook's Keras 2 computes (tf_keras loads the
    file itself and predicts), the reference every converted artifact is held to."""
    return _keras2_predictions
