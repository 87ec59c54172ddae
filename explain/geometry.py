"""Where the face's midline is, and ground-truth masks in model-input pixels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from hemiface.runtime.errors import HemifaceError, ImageError
from hemiface.runtime.images import read_image
from hemiface.runtime.manifest import Preprocessing
from hemiface.runtime.preprocess import RESIZE_FLAGS

# A detected face narrower than this share of the image is more likely a false positive
# (or a face far away) than the subject of a face-crop image; then the centre is used.
MIN_FACE_WIDTH_SHARE = 0.3


def find_midline(
    rgb: np.ndarray,
    face_box: tuple[int, int, int, int] | None = None,
    landmark_midline_x: float | None = None,
) -> tuple[float | None, str]:
    """The face's vertical midline as a fraction of the image width, and where it came from.

    A given face box (x, y, w, h in image pixels) wins; then a midline from landmarks
    (pixels); else OpenCV's Haar face detector (hemiface.runtime.face) if it finds a large
    face; else None: the image centre.
    """
    width = rgb.shape[1]
    if face_box is not None:
        x, _, w, _ = face_box
        if w <= 0 or x < 0 or x + w > width:
            raise HemifaceError(f"face box {tuple(face_box)} does not fit the {width}-wide image")
        return (x + w / 2.0) / width, "face box given"
    if landmark_midline_x is not None and 0 < landmark_midline_x < width:
        return landmark_midline_x / width, "landmarks (labels.csv)"
    try:
        from hemiface.runtime.face import FaceDetector

        box = FaceDetector().detect(rgb)
    except (ImportError, HemifaceError, cv2.error):
        box = None
    if box is not None and box.w >= MIN_FACE_WIDTH_SHARE * width:
        return (box.x + box.w / 2.0) / width, "face box (Haar detector)"
    return None, "image centre (no face box)"


def read_mask(path: Path, image_hw: tuple[int, int], spec: Preprocessing) -> np.ndarray:
    """A ground-truth mask PNG as a bool (H, W) array at the model's input size.

    The mask must have the image's size (or already the model's input size); it is
    resized like the image (nearest), and pixels brighter than 127 are inside.
    """
    path = Path(path)
    try:
        pixels = read_image(path)
    except ImageError as exc:
        raise HemifaceError(f"--mask {exc}") from None
    size = pixels.shape[:2]
    if size not in (tuple(image_hw), (spec.height, spec.width)):
        raise HemifaceError(
            f"{path}: mask is {size[1]}x{size[0]} pixels, the image {image_hw[1]}x{image_hw[0]}"
        )
    mask = (pixels.max(axis=-1) > 127).astype(np.uint8)
    if size != (spec.height, spec.width):
        mask = cv2.resize(mask, (spec.width, spec.height), interpolation=RESIZE_FLAGS[spec.resize])
    if not mask.any():
        raise HemifaceError(f"{path}: the mask is empty (no pixel brighter than 127)")
    return mask.astype(bool)
