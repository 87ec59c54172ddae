"""Turn an RGB uint8 image into a model input tensor, exactly as the manifest says.

The default reproduces the notebook's Keras path, `load_img(path, target_size=(224,
224))` then `/ 255`: PIL's nearest-neighbour resize samples the source pixel whose centre
is nearest, which is OpenCV's INTER_NEAREST_EXACT (plain INTER_NEAREST is offset by half
a pixel and differs). Even INTER_NEAREST_EXACT picks a different pixel where the source
coordinate lands exactly on a pixel edge (e.g. 640 -> 224, column 17): PIL accumulates the
step in floating point, so "nearest" uses index tables built the way PIL builds them.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from hemiface.runtime.manifest import Preprocessing

RESIZE_FLAGS = {
    "nearest": cv2.INTER_NEAREST_EXACT,
    "bilinear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
}


@lru_cache(maxsize=64)
def pil_nearest_indices(n_src: int, n_dst: int) -> np.ndarray:
    """Source indices of PIL's NEAREST resize (ImagingScaleAffine): start at half a step,
    add the step (a double) once per output pixel, truncate."""
    step = n_src / n_dst
    position = step * 0.5
    indices = np.empty(n_dst, dtype=np.intp)
    for i in range(n_dst):
        indices[i] = min(int(position), n_src - 1)
        position += step
    indices.flags.writeable = False  # shared by the cache
    return indices


def resize_for_model(rgb: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """Resize (and reorder channels if the model wants BGR); still uint8."""
    image = rgb
    if image.shape[:2] != (spec.height, spec.width) and spec.resize == "nearest":
        rows = pil_nearest_indices(image.shape[0], spec.height)
        cols = pil_nearest_indices(image.shape[1], spec.width)
        # Two 1-D takes pick the same pixels as image[rows[:, None], cols], ~4x faster.
        image = np.take(np.take(image, rows, axis=0), cols, axis=1)
    elif image.shape[:2] != (spec.height, spec.width):
        image = cv2.resize(
            image, (spec.width, spec.height), interpolation=RESIZE_FLAGS[spec.resize]
        )
    if spec.color_order == "BGR":
        image = image[..., ::-1]
    return image


@lru_cache(maxsize=16)
def _scale_table(scale: float, offset: float) -> np.ndarray:
    """float32(pixel) * scale + offset for every uint8 value, computed as to_tensor did."""
    table: np.ndarray = np.arange(256, dtype=np.float32) * np.float32(scale) + np.float32(offset)
    table.flags.writeable = False  # shared by the cache
    return table


def to_tensor(rgb: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """Model input for one image: float32 (1, H, W, 3) = resized pixels * scale + offset.

    uint8 images go through a 256-entry table (one pass instead of three, same values)."""
    resized = resize_for_model(rgb, spec)
    if resized.dtype == np.uint8:
        looked_up: np.ndarray = np.take(_scale_table(spec.scale, spec.offset), resized)
        return looked_up[np.newaxis]
    scaled: np.ndarray = resized.astype(np.float32) * np.float32(spec.scale)
    tensor: np.ndarray = scaled + np.float32(spec.offset)
    return tensor[np.newaxis]
