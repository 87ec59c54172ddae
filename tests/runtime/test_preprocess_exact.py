"""The fast preprocessing paths give exactly what the plain numpy formulas give."""

from __future__ import annotations

import numpy as np
import pytest

from hemiface.runtime.manifest import Preprocessing
from hemiface.runtime.preprocess import pil_nearest_indices, resize_for_model, to_tensor


@pytest.mark.parametrize(
    "spec",
    [
        Preprocessing(),
        Preprocessing(scale=2 / 255, offset=-1.0),
        Preprocessing(width=96, height=80),
    ],
)
def test_to_tensor_equals_the_formula(spec: Preprocessing) -> None:
    rng = np.random.default_rng(7)
    for shape in ((300, 280, 3), (224, 224, 3), (57, 411, 3)):
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        rows = pil_nearest_indices(shape[0], spec.height)
        cols = pil_nearest_indices(shape[1], spec.width)
        picked = image[rows[:, np.newaxis], cols]
        assert np.array_equal(resize_for_model(image, spec), picked)
        expected = picked.astype(np.float32) * np.float32(spec.scale) + np.float32(spec.offset)
        tensor = to_tensor(image, spec)
        assert tensor.dtype == np.float32 and tensor.shape == (1, spec.height, spec.width, 3)
        assert np.array_equal(tensor[0], expected)
