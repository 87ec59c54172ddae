"""RISE: seeded masks give the same map whatever the chunking or the threads; the map finds
the region the model uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hemiface.explain.rise import MaskPlan, RiseSettings, rise
from hemiface.runtime.errors import HemifaceError

NAMES = ["mobilenetv2_base_model", "mobilenetv2_finetuned_model", "cnn_stroke_model"]


class PatchScorer:
    names = ["patch"]

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        means = images[:, 4:12, 20:28].mean(axis=(1, 2, 3))
        return (1.0 / (1.0 + np.exp(-6.0 * (means - 0.4))))[:, None]


def test_masks_are_smooth_fractions_kept_about_as_often_as_asked() -> None:
    settings = RiseSettings(masks=200, grid=4, keep=0.3, seed=1)
    plan = MaskPlan.draw(settings, 32, 32)
    masks = plan.masks(0, 200, 32, 32)
    assert masks.shape == (200, 32, 32) and masks.min() >= 0.0 and masks.max() <= 1.0
    assert abs(float(masks.mean()) - 0.3) < 0.05
    assert len(np.unique(masks)) > 10  # bilinear: not binary
    with pytest.raises(HemifaceError, match="--keep"):
        RiseSettings(keep=1.0)


def test_rise_finds_the_patch_and_the_same_seed_gives_the_same_map() -> None:
    x = np.full((32, 32, 3), 0.9, np.float32)
    fill = np.zeros_like(x)
    first = rise(PatchScorer(), x, fill, RiseSettings(masks=300, grid=4, seed=7, chunk=64))
    again = rise(PatchScorer(), x, fill, RiseSettings(masks=300, grid=4, seed=7, chunk=64))
    chunked = rise(PatchScorer(), x, fill, RiseSettings(masks=300, grid=4, seed=7, chunk=17))
    other = rise(PatchScorer(), x, fill, RiseSettings(masks=300, grid=4, seed=8))
    assert np.array_equal(first.maps_right, again.maps_right)
    # Other chunks only regroup the float sums: the same masks, the same map to rounding.
    assert np.abs(first.maps_right - chunked.maps_right).max() < 1e-6
    assert np.abs(first.maps_right - other.maps_right).max() > 1e-3
    values = first.maps_right[0]
    assert values[4:12, 20:28].mean() > 5 * abs(values[20:, :12].mean())


def test_rise_on_the_artifacts_is_deterministic_across_threads(fused_set) -> None:  # noqa: ANN001
    from hemiface.explain.artifacts import open_format

    _, folder = fused_set
    x = np.random.default_rng(2).uniform(0, 1, (32, 32, 3)).astype(np.float32)
    settings = RiseSettings(masks=120, grid=4, seed=3, chunk=32)
    maps = []
    for workers, batch in ((1, 1), (2, 8)):
        opened = open_format(Path(folder), "int8", NAMES, workers=workers, batch=batch)
        try:
            maps.append(rise(opened.pool, x, np.zeros_like(x), settings).maps_right)
        finally:
            opened.close()
    assert np.array_equal(maps[0], maps[1])
