"""Occlusion sensitivity: the windows cover the image, the map is where the model looks, and
the float32 artifact's map is the Keras model's map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hemiface.explain.occlusion import OcclusionSettings, occlusion, window_starts
from hemiface.runtime.errors import HemifaceError

NAMES = ["mobilenetv2_base_model", "mobilenetv2_finetuned_model", "cnn_stroke_model"]


class PatchScorer:
    """p = sigmoid(mean of the image over one patch): only the patch matters."""

    names = ["patch"]

    def __init__(self, top: int, left: int, size: int) -> None:
        self.box = (slice(top, top + size), slice(left, left + size))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        means = images[:, self.box[0], self.box[1]].mean(axis=(1, 2, 3))
        return (1.0 / (1.0 + np.exp(-4.0 * means)))[:, None]


def test_windows_cover_every_pixel_and_end_flush() -> None:
    assert window_starts(224, 16, 8) == list(range(0, 209, 8))
    assert window_starts(30, 8, 5) == [0, 5, 10, 15, 20, 22]
    with pytest.raises(HemifaceError, match="larger than the input"):
        window_starts(8, 16, 8)
    with pytest.raises(HemifaceError, match="at least 1"):
        OcclusionSettings(window=0)


def test_the_map_is_where_the_model_looks() -> None:
    x = np.full((32, 32, 3), 0.8, np.float32)
    scorer = PatchScorer(8, 20, 4)
    maps = occlusion(scorer, x, np.zeros_like(x), OcclusionSettings(window=4, stride=4, chunk=5))
    values = maps.maps_right[0]
    assert maps.evaluations == 64 + 1
    assert values[8:12, 20:24].min() > 0.1  # hiding the patch lowers P(Right)
    outside = np.ones_like(values, dtype=bool)
    outside[8:12, 20:24] = False
    assert np.abs(values[outside]).max() == 0.0


def _keras_scorer(path: Path):  # noqa: ANN202 - a BatchScorer over a Keras model
    import keras

    from hemiface.explain.scorer import ModelScorer

    scorer = ModelScorer(keras.saving.load_model(path, compile=False), path.stem)

    class KerasColumn:
        names = [path.stem]

        def probabilities(self, images: np.ndarray) -> np.ndarray:
            return scorer.probabilities(images, batch_size=32)[:, None]

    return KerasColumn()


def test_float32_artifact_occlusion_equals_keras_occlusion(
    fused_set, sibling_sources: Path
) -> None:  # noqa: ANN001
    """The proof that the path is right: same occlusion on the artifact (through the fused
    artifact for the two siblings) and on the Keras model, within 1e-4 of the output range."""
    from hemiface.explain.artifacts import open_format

    _, folder = fused_set
    rng = np.random.default_rng(3)
    x = rng.uniform(0.0, 1.0, (32, 32, 3)).astype(np.float32)
    settings = OcclusionSettings(window=8, stride=4)
    opened = open_format(folder, "float32", NAMES, workers=2, batch=4)
    try:
        assert opened.fused_files, "the siblings should run through their fused artifact"
        artifact = occlusion(opened.pool, x, np.zeros_like(x), settings)
    finally:
        opened.close()
    for index, name in enumerate(NAMES):
        suffix = ".keras" if name == "cnn_stroke_model" else ".h5"
        keras_maps = occlusion(
            _keras_scorer(sibling_sources / "models" / f"{name}{suffix}"),
            x,
            np.zeros_like(x),
            settings,
        )
        difference = np.abs(artifact.maps_right[index] - keras_maps.maps_right[0]).max()
        # The sigmoid's output range is [0, 1]: 1e-4 of it.
        assert difference <= 1e-4, (name, difference)
        assert np.abs(keras_maps.maps_right[0]).max() > 1e-3  # the maps are not flat
