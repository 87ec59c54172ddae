"""Level the eyes before the crop: a rotation about the crop's centre, never a mirror.

A detector with keypoints (BlazeFace) gives the roll of the eye line; the crop is cut from
the frame turned by that angle, so the models see an upright face. A rotation keeps the
patient's sides where they were (the image's right stays the image's right); nothing here
flips. A roll below `MIN_ROLL_DEG`, or a box without keypoints (Haar), gives the plain
square crop of `crop_face`, pixel for pixel.
"""

from __future__ import annotations

import cv2
import numpy as np

from hemiface.runtime.face import DEFAULT_MARGIN, FaceBox, crop_box, crop_face

MIN_ROLL_DEG = 1.0  # smaller tilts are within the keypoints' own noise: not worth a warp


def level_matrix(
    shape: tuple[int, ...], box: FaceBox, margin: float = DEFAULT_MARGIN
) -> np.ndarray:
    """The 2x3 affine map from frame pixels to the levelled square crop of side `crop_box`.

    It turns the frame counter-clockwise (as seen on screen) by `box.roll` degrees about
    the centre of the plain crop, then moves that centre to the centre of the crop.
    """
    square = crop_box(shape, box, margin)
    cx, cy = square.x + square.w / 2, square.y + square.h / 2
    matrix = cv2.getRotationMatrix2D((cx, cy), box.roll, 1.0)
    matrix[:, 2] += np.array((square.w / 2 - cx, square.h / 2 - cy))
    return matrix


def align_face(
    rgb: np.ndarray, box: FaceBox, margin: float = DEFAULT_MARGIN, level: bool = True
) -> tuple[np.ndarray, float]:
    """(square face crop with the eyes level, degrees it was turned counter-clockwise)."""
    if not level or not box.keypoints or abs(box.roll) < MIN_ROLL_DEG:
        return crop_face(rgb, box, margin), 0.0
    side = crop_box(rgb.shape, box, margin).w
    crop = cv2.warpAffine(
        rgb,
        level_matrix(rgb.shape, box, margin),
        (side, side),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return crop, float(box.roll)
