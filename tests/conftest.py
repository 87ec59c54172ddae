"""Fixtures shared by every test area. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Keep TensorFlow quiet and single-threaded in tests; set before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


@pytest.fixture(scope="session", autouse=True)
def _private_format_choice_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Format timings made by tests go to a temporary folder, not the user's cache."""
    saved = os.environ.get("HEMIFACE_CACHE_DIR")
    os.environ["HEMIFACE_CACHE_DIR"] = str(tmp_path_factory.mktemp("hemiface-cache"))
    yield
    if saved is None:
        os.environ.pop("HEMIFACE_CACHE_DIR", None)
    else:
        os.environ["HEMIFACE_CACHE_DIR"] = saved


# --- Models with a shared trunk (fusion), used by the convert, runtime and bench tests ----

SIBLING_SIZE = 32
SIBLING_CUT = "b2_expand"  # the first layer the fine-tuned sibling changed


def build_sibling_models(folder, seed: int = 0):  # noqa: ANN001, ANN201 - keras is lazy
    """A base model and its "fine-tuned" sibling, saved as .h5 like the users' files.

    The architecture follows the users' MobileNetV2 models in miniature: a Rescaling to
    [-1, 1], an inverted-residual block with BatchNormalization and an Add, then an upper
    block, global pooling, dropout and a sigmoid Dense. The sibling is a clone whose weights
    from SIBLING_CUT up are perturbed, so everything below it is bit-identical.
    """
    import keras
    import numpy as np

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input((SIBLING_SIZE, SIBLING_SIZE, 3), name="image")
    x = layers.Rescaling(2.0, offset=-1.0, name="to_minus1_1")(inputs)
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    stem = layers.ReLU(6.0, name="stem_relu")(x)
    x = layers.Conv2D(16, 1, use_bias=False, name="b1_expand")(stem)
    x = layers.BatchNormalization(name="b1_expand_bn")(x)
    x = layers.ReLU(6.0, name="b1_expand_relu")(x)
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="b1_dw")(x)
    x = layers.BatchNormalization(name="b1_dw_bn")(x)
    x = layers.ReLU(6.0, name="b1_dw_relu")(x)
    x = layers.Conv2D(8, 1, use_bias=False, name="b1_project")(x)
    x = layers.BatchNormalization(name="b1_project_bn")(x)
    x = layers.Add(name="b1_add")([stem, x])
    x = layers.Conv2D(24, 1, use_bias=False, name=SIBLING_CUT)(x)
    x = layers.BatchNormalization(name="b2_expand_bn")(x)
    x = layers.ReLU(6.0, name="b2_expand_relu")(x)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="droop_side")(x)
    base = keras.Model(inputs, outputs, name="mobilenetv2_base_model")
    rng = np.random.default_rng(seed)
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    gamma,
                    rng.normal(0, 0.1, beta.shape).astype("float32"),
                    rng.normal(0, 0.1, mean.shape).astype("float32"),
                    rng.uniform(0.5, 2.0, var.shape).astype("float32"),
                ]
            )
    tuned = keras.models.clone_model(base)
    tuned.set_weights(base.get_weights())
    names = [layer.name for layer in tuned.layers]
    for layer in tuned.layers[names.index(SIBLING_CUT) :]:
        weights = layer.get_weights()
        changed = [w + rng.normal(0, 0.3, w.shape).astype(w.dtype) * (abs(w).mean() + 0.1)
                   for w in weights]  # fmt: skip
        if isinstance(layer, layers.BatchNormalization):  # a variance stays positive
            changed[3] = weights[3] * np.exp(rng.normal(0, 0.3, weights[3].shape)).astype("float32")
        if weights:
            layer.set_weights(changed)
    folder.mkdir(parents=True, exist_ok=True)
    base.save(folder / "mobilenetv2_base_model.h5")
    tuned.save(folder / "mobilenetv2_finetuned_model.h5")
    return base, tuned


def build_flatten_cnn(folder, seed: int = 3):  # noqa: ANN001, ANN201 - keras is lazy
    """A small CNN whose head is Flatten + Dense, like the users' custom CNN (.keras)."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((SIBLING_SIZE, SIBLING_SIZE, 3), name="image"),
            layers.Conv2D(8, 4, strides=4, padding="same", name="conv1"),
            layers.BatchNormalization(name="bn1"),
            layers.ReLU(name="relu1"),
            layers.MaxPooling2D(name="pool1"),
            layers.Flatten(name="flatten"),
            layers.Dense(8, activation="relu", name="dense"),
            layers.Dense(1, activation="sigmoid", name="droop_side"),
        ],
        name="cnn_stroke_model",
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "cnn_stroke_model.keras")
    return model


def write_lateral_images(folder, per_class: int = 12, seed: int = 5):  # noqa: ANN001, ANN201
    """Real JPEG files in Left/ and Right/, one side darker, full [0, 255] range."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    for label in ("Left", "Right"):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
            image[0, 0], image[0, 1] = 0, 255
            half = slice(0, 24) if label == "Left" else slice(24, None)
            image[:, half] //= 3
            cv2.imwrite(str(folder / label / f"{i:03d}.png"), image)
    return folder


@pytest.fixture(scope="session")
def sibling_sources(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """Folder with the two siblings (.h5) and the Flatten CNN (.keras), and an image folder."""
    folder = tmp_path_factory.mktemp("siblings")
    build_sibling_models(folder / "models")
    build_flatten_cnn(folder / "models")
    write_lateral_images(folder / "images")
    return folder


SIBLING_FILES = (
    "mobilenetv2_base_model.h5",
    "mobilenetv2_finetuned_model.h5",
    "cnn_stroke_model.keras",
)


@pytest.fixture(scope="session")
def fused_set(sibling_sources, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN001, ANN201
    """The three models converted (float32 and int8) with fusion on: (summary, folder)."""
    from hemiface.convert.pipeline import ConvertSettings, convert_models

    out = tmp_path_factory.mktemp("fused") / "set"
    models = [sibling_sources / "models" / name for name in SIBLING_FILES]
    summary = convert_models(
        models, out, ConvertSettings(formats=("float32", "int8"), calib=sibling_sources / "images")
    )
    return summary, out
