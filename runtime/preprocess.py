"""Turn an RGB uint8 image into a model input tensor, exactly as the manifest says.

The default reproduces the notebook's Keras path, `load_img(path, target_size=(224,
224))` then `/ 255`: PIL's nearest-neighbour resize samples the source pixel whose centre
is nearest, which is OpenCV's INTER_NEAREST_EXACT (plain INTER_NEAREST is offset by half
a pixel and differs).
"""

from __future__ import annotations

import cv2
import numpy as np

from hemiface.runtime.manifest import Preprocessing

RESIZE_FLAGS = {
    "nearest": cv2.INTER_NEAREST_EXACT,
    "bilinear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
}


def resize_for_model(rgb: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """Resize (and reorder channels if the model wants BGR); still uint8."""
    image = rgb
    if image.shape[:2] != (spec.height, spec.width):
        image = cv2.resize(
            image, (spec.width, spec.height), interpolation=RESIZE_FLAGS[spec.resize]
        )
    if spec.color_order == "BGR":
        image = image[..., ::-1]
    return image


def to_tensor(rgb: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """Model input for one image: float32 (1, H, W, 3) = resized pixels * scale + offset."""
    resized = resize_for_model(rgb, spec).astype(np.float32)
    tensor = resized * np.float32(spec.scale) + np.float32(spec.offset)
    return tensor[np.newaxis]
