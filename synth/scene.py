"""Everything around the face: cluttered background, directional light, shadow, noise, blur.

None of it depends on the label, so the lighting side, the shadow and the background are
confounders a model must learn to ignore.
"""

from __future__ import annotations

import cv2
import numpy as np

from hemiface.synth.params import FaceParams

# The light and shadow maps are computed on a coarse grid and resized: they are smooth,
# and this keeps them well under a millisecond.
_MAP_GRID = 32


def draw_background(params: FaceParams, size: int) -> np.ndarray:
    """A vertical two-colour gradient with random rectangles, circles and lines on it."""
    ends = np.array([[params.background], [params.background_gradient]], dtype=np.uint8)
    canvas = cv2.resize(ends, (size, size), interpolation=cv2.INTER_LINEAR)
    shapes = np.random.default_rng(params.clutter_seed)
    for _ in range(params.clutter):
        colour = tuple(int(c) for c in shapes.integers(0, 256, 3))
        kind = shapes.integers(3)
        x0, y0, x1, y1 = (int(v) for v in shapes.integers(-size // 4, size + size // 4, 4))
        if kind == 0:
            cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, -1)
        elif kind == 1:
            radius = int(shapes.integers(size // 20, size // 4))
            cv2.circle(canvas, (x0, y0), radius, colour, -1)
        else:
            width = int(shapes.integers(1, max(2, size // 25)))
            cv2.line(canvas, (x0, y0), (x1, y1), colour, width)
    return canvas


def lighting_gain(params: FaceParams, size: int) -> np.ndarray:
    """Multiplicative light map (size, size, 3) float32: a directional ramp, a soft shadow."""
    coords = np.linspace(-1.0, 1.0, _MAP_GRID, dtype=np.float32)
    xx, yy = np.meshgrid(coords, coords)
    light = 1.0 + params.light_strength * (
        xx * np.cos(params.light_angle) + yy * np.sin(params.light_angle)
    )
    if params.shadow_depth > 0:
        edge = xx * np.cos(params.shadow_angle) + yy * np.sin(params.shadow_angle)
        shade = 1.0 / (1.0 + np.exp(-(edge - params.shadow_offset) / 0.08))
        light = light * (1.0 - params.shadow_depth * shade)
    grid = np.repeat(light.astype(np.float32)[:, :, None], 3, axis=2)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_LINEAR)


def _noise_bank() -> np.ndarray:
    # One fixed bank of unit Gaussian noise (std _NOISE_UNIT grey levels); each image takes a
    # random window of it and scales it: 5x faster than drawing fresh noise per image.
    bank = np.random.default_rng(20240611).standard_normal((_BANK, _BANK, 3)) * _NOISE_UNIT
    return bank.astype(np.int16)


_BANK = 640
_NOISE_UNIT = 16.0
_NOISE = _noise_bank()


def apply_imaging(image: np.ndarray, params: FaceParams, rng: np.random.Generator) -> np.ndarray:
    """Light, shadow, blur and sensor noise, in that (physical) order; returns uint8."""
    height, width = image.shape[:2]
    lit = cv2.multiply(image, lighting_gain(params, width), dtype=cv2.CV_8U)
    if params.blur > 0:
        lit = cv2.GaussianBlur(lit, (0, 0), params.blur)
    if params.noise > 0:
        if height <= _BANK and width <= _BANK:
            y0, x0 = (int(v) for v in rng.integers(0, _BANK - max(height, width) + 1, 2))
            noise = _NOISE[y0 : y0 + height, x0 : x0 + width]
        else:
            noise = (rng.standard_normal(image.shape) * _NOISE_UNIT).astype(np.int16)
        lit = cv2.addWeighted(lit, 1.0, noise, params.noise / _NOISE_UNIT, 0.0, dtype=cv2.CV_8U)
    return lit
