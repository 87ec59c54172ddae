"""Random identity, pose and imaging parameters of one synthetic face.

Every number is drawn from the generator in a fixed order, *before* overrides are
applied, so that overriding one parameter (e.g. `roll=0`) leaves all the others as they
were for the same seed. Lengths are fractions of the face's half-width `a` or
half-height `b` (see faces.py); left/right pairs are indexed 0 = image left, 1 = image
right, and everything that is not droop is drawn independently of the label, so that
lighting side, roll sign and background carry no information about it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

# Skin tones across the human range (RGB), light to dark; a tone is interpolated between
# two neighbours, so the whole range is covered continuously.
SKIN_TONES = np.array(
    [
        (255, 226, 204),
        (244, 205, 170),
        (232, 186, 140),
        (214, 160, 112),
        (186, 128, 82),
        (150, 98, 62),
        (112, 70, 42),
        (78, 48, 30),
        (56, 36, 24),
    ],
    dtype=np.float64,
)
HAIR_COLOURS = np.array(
    [
        (20, 16, 14),
        (58, 38, 24),
        (104, 70, 40),
        (176, 140, 90),
        (150, 70, 36),
        (150, 150, 150),
        (224, 220, 212),
    ],
    dtype=np.float64,
)
IRIS_COLOURS = np.array(
    [(60, 36, 20), (100, 64, 30), (70, 110, 150), (80, 120, 70), (40, 30, 26)], dtype=np.float64
)


@dataclass(frozen=True)
class FaceParams:
    """Everything that varies between faces except the label and the severity."""

    # identity
    face_width: float  # half-width a, as a fraction of the image size
    face_aspect: float  # b / a
    jaw_width: float  # jaw ellipse half-width / a
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    iris: tuple[int, int, int]
    lips: tuple[int, int, int]
    clothes: tuple[int, int, int]
    hairline: float  # distance of the hairline above the face centre / b
    long_hair: bool
    bald: bool
    ears: bool
    glasses: bool
    glasses_colour: tuple[int, int, int]
    eye_height: float  # eye centre above the face centre / b
    eye_spacing: float  # eye centre from the midline / a
    eye_width: float  # eye half-width / a
    eye_open: float  # eye half-height / eye half-width
    brow_gap: float  # brow above the eye centre / eye half-width
    brow_arch: float  # / eye half-width
    brow_thickness: float  # / image size
    nose_length: float  # nose tip below the face centre / b
    nose_width: float  # / a
    mouth_height: float  # mouth line below the face centre / b
    mouth_width: float  # mouth half-width / a
    upper_lip: float  # / b
    lower_lip: float  # / b
    fold_strength: float  # nasolabial fold darkness, 0..1
    # natural asymmetry, independent of the label (index 0 = image left, 1 = image right)
    corner_jitter: tuple[float, float]  # / b
    brow_jitter: tuple[float, float]  # / eye half-width
    eye_jitter: tuple[float, float]  # relative eye-opening change
    # pose
    roll: float  # degrees, counter-clockwise
    scale: float
    shift: tuple[float, float]  # fraction of the image size
    # imaging
    background: tuple[int, int, int]
    background_gradient: tuple[int, int, int]
    clutter: int  # number of background shapes
    clutter_seed: int
    light_angle: float  # radians, direction the light comes from
    light_strength: float  # 0..~0.45 multiplicative gain across the image
    shadow_angle: float
    shadow_offset: float
    shadow_depth: float  # 0 = no shadow
    noise: float  # sensor noise sigma in grey levels
    blur: float  # Gaussian blur sigma in pixels, 0 = none
    jpeg_quality: int


PARAM_NAMES = tuple(f.name for f in fields(FaceParams))


def _colour(values: np.ndarray) -> tuple[int, int, int]:
    clipped = np.clip(np.rint(values), 0, 255).astype(int)
    return int(clipped[0]), int(clipped[1]), int(clipped[2])


def _mix(table: np.ndarray, rng: np.random.Generator, jitter: float) -> np.ndarray:
    position = rng.uniform(0, len(table) - 1)
    low = int(position)
    high = min(low + 1, len(table) - 1)
    frac = position - low
    return table[low] * (1 - frac) + table[high] * frac + rng.normal(0, jitter, 3)


def sample_params(rng: np.random.Generator, **overrides: Any) -> FaceParams:
    """Draw one face's parameters; keyword overrides replace single fields afterwards."""
    # Any: the fields have mixed types; `replace` checks each name and takes the value as given.
    skin = _mix(SKIN_TONES, rng, 6.0)
    hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] + rng.normal(0, 8, 3)
    iris = IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))] + rng.normal(0, 8, 3)
    lip_red = np.array([170.0, 70.0, 80.0])
    lips = skin * rng.uniform(0.55, 0.75) + lip_red * rng.uniform(0.15, 0.4)
    params = FaceParams(
        face_width=rng.uniform(0.25, 0.29),
        face_aspect=rng.uniform(1.2, 1.36),
        jaw_width=rng.uniform(0.72, 0.95),
        skin=_colour(skin),
        hair=_colour(hair),
        iris=_colour(iris),
        lips=_colour(lips),
        clothes=_colour(rng.uniform(0, 255, 3)),
        hairline=rng.uniform(0.5, 0.72),
        long_hair=bool(rng.random() < 0.45),
        bald=bool(rng.random() < 0.08),
        ears=bool(rng.random() < 0.85),
        glasses=bool(rng.random() < 0.25),
        glasses_colour=_colour(rng.uniform(0, 120, 3)),
        eye_height=rng.uniform(0.1, 0.2),
        eye_spacing=rng.uniform(0.37, 0.46),
        eye_width=rng.uniform(0.17, 0.22),
        eye_open=rng.uniform(0.3, 0.42),
        brow_gap=rng.uniform(0.8, 1.1),
        brow_arch=rng.uniform(0.1, 0.35),
        brow_thickness=rng.uniform(0.011, 0.022),
        nose_length=rng.uniform(0.14, 0.24),
        nose_width=rng.uniform(0.13, 0.19),
        mouth_height=rng.uniform(0.46, 0.56),
        mouth_width=rng.uniform(0.3, 0.4),
        upper_lip=rng.uniform(0.035, 0.06),
        lower_lip=rng.uniform(0.045, 0.08),
        fold_strength=rng.uniform(0.25, 0.6),
        corner_jitter=(rng.normal(0, 0.012), rng.normal(0, 0.012)),
        brow_jitter=(rng.normal(0, 0.05), rng.normal(0, 0.05)),
        eye_jitter=(rng.normal(0, 0.04), rng.normal(0, 0.04)),
        roll=rng.uniform(-10, 10),
        scale=rng.uniform(0.82, 1.08),
        shift=(rng.uniform(-0.05, 0.05), rng.uniform(-0.04, 0.04)),
        background=_colour(rng.uniform(0, 255, 3)),
        background_gradient=_colour(rng.uniform(0, 255, 3)),
        clutter=int(rng.integers(3, 16)),
        clutter_seed=int(rng.integers(2**31)),
        light_angle=rng.uniform(0, 2 * np.pi),
        light_strength=rng.uniform(0.0, 0.45),
        shadow_angle=rng.uniform(0, 2 * np.pi),
        shadow_offset=rng.uniform(-0.25, 0.25),
        shadow_depth=float(rng.uniform(0.15, 0.45)) if rng.random() < 0.4 else 0.0,
        noise=rng.uniform(1.0, 7.0),
        blur=float(rng.uniform(0.3, 1.1)) if rng.random() < 0.5 else 0.0,
        jpeg_quality=int(rng.integers(60, 96)),
    )
    unknown = sorted(set(overrides) - set(PARAM_NAMES))
    if unknown:
        raise TypeError(f"unknown face parameter(s) {unknown}; known: {', '.join(PARAM_NAMES)}")
    return replace(params, **overrides) if overrides else params
