"""The runtime's preprocessing against the notebook's Keras path, on real JPEG and PNG files.

Keras: load_img(path, target_size=(224, 224)) (PIL decode, nearest resize) ->
img_to_array / 255. Runtime: read_image (OpenCV decode) -> to_tensor (INTER_NEAREST_EXACT).

Tolerances: PNG is lossless and both resizes sample the same pixels, so the tensors must
be identical. JPEG decoders may differ by a few grey levels (IDCT / chroma upsampling):
max |difference| <= 4/255 and mean <= 0.5/255. Predictions of a tiny float32 model on the
two tensors: |dp| <= 0.005 (JPEG), <= 1e-5 (PNG).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from hemiface.runtime.images import read_image
from hemiface.runtime.manifest import Preprocessing
from hemiface.runtime.modelset import load_model_set
from hemiface.runtime.preprocess import to_tensor

CASES = [
    ("photo.jpg", (640, 480), 4 / 255, 0.5 / 255, 0.005),
    ("photo.png", (333, 517), 0, 0, 1e-5),
]


@pytest.mark.parametrize("name, size, max_tol, mean_tol, dp_tol", CASES)
def test_tensor_and_prediction_match_keras(
    tmp_path: Path, astronaut, model_set_dir: Path, helpers, name, size, max_tol, mean_tol, dp_tol
) -> None:
    keras = pytest.importorskip("keras")
    image = cv2.resize(astronaut, size, interpolation=cv2.INTER_AREA)
    image[:, size[0] // 2 :] //= 2  # make the halves differ so the tiny models answer
    path = tmp_path / name
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))

    expected = keras.utils.img_to_array(keras.utils.load_img(path, target_size=(224, 224))) / 255
    actual = to_tensor(read_image(path), Preprocessing())[0]
    assert actual.shape == expected.shape == (224, 224, 3)
    diff = np.abs(actual - expected)
    assert diff.max() <= max_tol + 1e-7
    assert diff.mean() <= mean_tol + 1e-7

    model_set = load_model_set(model_set_dir, fmt="float32", only=["mobilenetv2_base_model"])
    classifier = model_set.classifiers[0]
    p_runtime = classifier.predict_one(actual[np.newaxis])
    p_keras = classifier.predict_one(expected[np.newaxis].astype(np.float32))
    assert abs(p_runtime - p_keras) <= dp_tol
    # and the Keras model itself on the Keras tensor, against the runtime on its own
    model = keras.models.load_model(model_set_dir.parent / "mobilenetv2_base_model.keras")
    p_source = float(model(expected[np.newaxis].astype(np.float32)).numpy().reshape(-1)[0])
    assert abs(p_runtime - p_source) <= dp_tol + 1e-4
    assert p_runtime < 0.4  # the brighter left half: a confident "Left", not a coin toss


@pytest.mark.parametrize("size", [(640, 480), (1920, 1080), (333, 517), (225, 223), (100, 90)])
def test_nearest_resize_picks_the_pixels_pil_picks(size) -> None:
    image_module = pytest.importorskip("PIL.Image")
    width, height = size
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    expected = np.asarray(image_module.fromarray(image).resize((224, 224), image_module.NEAREST))
    actual = to_tensor(image, Preprocessing(scale=1.0))[0].astype(np.uint8)
    assert np.array_equal(actual, expected)
