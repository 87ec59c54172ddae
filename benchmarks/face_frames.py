"""The face benchmark's frames: synthetic scenes with one face of known place and size.

Every frame is 640x480: a face-free scene of the synthetic faces' world (background,
clutter, directional light, shadow, blur and sensor noise) with one rendered face pasted
at a random place and scale. The face's true box (`SynthFace.face_box`, the head outline)
is known in frame pixels, so a detection counts only where it lands on the face.

Faces come in bands of face-box height (`SIZE_BANDS`), taken in turn so every band gets
the same count, the height drawn uniformly inside the band. Skin tone is the Rec. 601
luma of the face's skin colour; its quartiles are equal-count over the whole set.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from hemiface.core.domain import LABELS
from hemiface.runtime.face import FaceBox
from hemiface.synth.faces import render_face
from hemiface.synth.params import sample_params
from hemiface.synth.scene import apply_imaging, draw_background

FRAME = (640, 480)
# Face-box heights in the 640x480 frame, pixels, from a face far from the camera to one
# close to it; the last band ends where a face with its surroundings still fits 480 px.
SIZE_BANDS: tuple[tuple[int, int], ...] = ((80, 120), (120, 180), (180, 260), (260, 340))
# Target heights are drawn this far inside a band: pasting at a whole-pixel size moves the
# height by under half a pixel, so it never leaves its band.
BAND_INSET_PX = 1.0


@dataclass(frozen=True)
class PlacedFace:
    """One benchmark frame and the truth about its face."""

    frame: np.ndarray  # (480, 640, 3) RGB uint8
    box: tuple[float, float, float, float]  # true face box x, y, w, h in frame pixels
    luminance: float  # Rec. 601 luma of the skin colour, 0-255
    size_band: int  # index into the bands the frame was drawn for


def skin_luminance(rgb: tuple[int, int, int]) -> float:
    """Rec. 601 luma of an RGB colour, 0-255."""
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def face_free_scene(rng: np.random.Generator) -> np.ndarray:
    """One 640x480 RGB scene of the synthetic faces' world with no face."""
    width, height = FRAME
    params = sample_params(rng)
    scene = apply_imaging(draw_background(params, width), params, rng)
    top = (width - height) // 2
    return np.ascontiguousarray(scene[top : top + height])


def face_free_frames(count: int, seed: int) -> Iterator[np.ndarray]:
    """`count` face-free 640x480 scenes from `seed`."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield face_free_scene(rng)


def place_face(rng: np.random.Generator, band: tuple[int, int], band_index: int) -> PlacedFace:
    """A face-free scene with one face whose box height is drawn uniformly inside `band`.

    The rendered face image (a square with the face's own surroundings) is cut to the
    largest square around the face box that still fits the frame at the drawn scale, so
    the largest faces fit; smaller ones keep the whole square.
    """
    frame = face_free_scene(rng)
    height, width = frame.shape[:2]
    face = render_face(rng, LABELS[int(rng.integers(2))], float(rng.uniform(0.1, 1.0)))
    fx, fy, fw, fh = face.face_box
    size = face.image.shape[0]
    target = float(rng.uniform(band[0] + BAND_INSET_PX, band[1] - BAND_INSET_PX))
    crop = min(size, math.floor(min(height, width) * fh / target))
    if crop < max(fw, fh):
        raise ValueError(f"a {target:.0f} px face does not fit a {width}x{height} frame")
    cx, cy = fx + fw / 2, fy + fh / 2
    x0 = int(np.clip(round(cx - crop / 2), 0, size - crop))
    y0 = int(np.clip(round(cy - crop / 2), 0, size - crop))
    side = round(crop * target / fh)
    scale = side / crop
    patch = face.image[y0 : y0 + crop, x0 : x0 + crop]
    shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    x = int(rng.integers(0, width - side + 1))
    y = int(rng.integers(0, height - side + 1))
    frame[y : y + side, x : x + side] = cv2.resize(patch, (side, side), interpolation=shrink)
    box = (x + (fx - x0) * scale, y + (fy - y0) * scale, fw * scale, fh * scale)
    skin = face.params.skin if face.params is not None else (0, 0, 0)
    return PlacedFace(frame, box, skin_luminance(skin), band_index)


def sized_face_frames(
    faces: int, seed: int, bands: Sequence[tuple[int, int]] = SIZE_BANDS
) -> Iterator[PlacedFace]:
    """`faces` frames from `seed`, the bands taken in turn (equal counts when `faces` is a
    multiple of the number of bands)."""
    rng = np.random.default_rng(seed)
    for index in range(faces):
        band = index % len(bands)
        yield place_face(rng, bands[band], band)


def skin_quartiles(luminances: Sequence[float], count: int = 4) -> list[int]:
    """Each face's equal-count skin band (0 darkest), the faces sorted by luminance."""
    order = np.argsort(np.asarray(luminances, np.float64), kind="stable")
    bands = [0] * len(order)
    for band, part in enumerate(np.array_split(order, count)):
        for index in part:
            bands[int(index)] = band
    return bands


def centre_inside(found: FaceBox | None, box: tuple[float, float, float, float]) -> bool:
    """Whether a detector's face lands on the true face: its box's centre inside `box`."""
    if found is None:
        return False
    cx, cy = found.x + found.w / 2, found.y + found.h / 2
    x, y, w, h = box
    return x <= cx <= x + w and y <= cy <= y + h
