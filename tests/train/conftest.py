"""Tiny data for the trainer tests: clean, marked-droop faces at 96x96 train in seconds."""

from __future__ import annotations

import numpy as np
import pytest

from hemiface.synth.faces import render_face

CLEAN = dict(clutter=0, noise=0.0, blur=0.0, light_strength=0.0, shadow_depth=0.0,
             roll=0.0, scale=1.0, shift=(0.0, 0.0), glasses=False)  # fmt: skip


def clean_faces(count: int, seed: int, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    images = np.empty((count, size, size, 3), np.uint8)
    labels = np.empty(count, np.float32)
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        label = ("Left", "Right")[i % 2]
        images[i] = render_face(rng, label, float(rng.uniform(0.8, 1.0)), size, **CLEAN).image
        labels[i] = float(i % 2)
    return images, labels


@pytest.fixture(scope="session")
def clean_set() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"train": clean_faces(400, seed=1), "test": clean_faces(100, seed=2)}
