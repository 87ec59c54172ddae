"""Procedural faces with one-sided droop, drawn with OpenCV.

Geometry is laid out in a canonical upright frame (face centre `(cx, cy)`, half-width
`a`, half-height `b`), then every point goes through one affine pose transform (roll,
scale, translation) before it is drawn, so lines stay crisp and the landmarks are exact.

Side convention: the label names the PATIENT's affected side; in an
unmirrored image the patient's left is the IMAGE's right. So label "Left" puts the droop
on the image's right half (+x), "Right" on the image's left half. Landmark names say the
IMAGE side ("image_left_mouth_corner" is the corner with the smaller x).

The ground-truth mask is exact: the features are drawn twice on the same head, once
without droop and once with it, and the mask is where the two differ (before lighting,
blur and noise, which are applied to the whole image afterwards).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from hemiface.core.domain import LABELS
from hemiface.synth.params import FaceParams, sample_params
from hemiface.synth.scene import apply_imaging, draw_background

# Sub-pixel drawing: OpenCV takes fixed-point coordinates with this many fractional bits,
# which matters for subtle droops of a pixel or two.
_SHIFT = 4
_ONE = float(1 << _SHIFT)
_AA = cv2.LINE_AA
_ARC = np.linspace(0.0, 2.0 * np.pi, 41)[:-1]
_COS, _SIN = np.cos(_ARC), np.sin(_ARC)
_LOWER_LID = np.linspace(0.0, np.pi, 13)
_UPPER_LID = np.linspace(np.pi, 2 * np.pi, 13)
_BEZIER_S = np.linspace(0.0, 1.0, 9)[:, None]
_MOUTH_U = np.linspace(-1.0, 1.0, 17)

# How far each droop component moves at severity 1 (fractions of a, b or the eye width).
DROOP_CORNER = 0.18  # mouth-corner drop / b
DROOP_CORNER_INWARD = 0.05  # corner moves toward the midline / mouth half-width
DROOP_LIP_SAG = 0.08  # lower-lip sag on the affected side / b
DROOP_FOLD_FADE = 0.85  # nasolabial fold fades toward skin colour
DROOP_BROW = 0.6  # brow ptosis / eye half-width
DROOP_BROW_OUTER = 0.4  # extra drop of the brow's outer end / eye half-width
DROOP_FISSURE = 1.4  # lower lid drops: lower eye radius grows by this fraction


@dataclass
class SynthFace:
    """One rendered face: RGB image, droop mask, label, severity, landmarks, face box."""

    image: np.ndarray  # (H, W, 3) RGB uint8
    mask: np.ndarray  # (H, W) bool: pixels the droop changed
    label: str  # "Left" | "Right": the patient's affected side
    severity: float  # 0 (none) .. 1 (marked)
    landmarks: dict[str, tuple[float, float]]  # pixel (x, y), named by IMAGE side
    face_box: tuple[int, int, int, int]  # x, y, w, h
    params: FaceParams | None = field(default=None, repr=False)


class _Canvas:
    """Draws canonical-frame shapes through the pose transform."""

    def __init__(self, image: np.ndarray, matrix: np.ndarray, scale: float) -> None:
        self.image = image
        self.matrix = matrix
        self.scale = scale
        # The fixed-point scale and the +0.5 of rounding folded into one affine map.
        self._linear = (matrix[:, :2] * _ONE).T.copy()
        self._offset = matrix[:, 2] * _ONE + 0.5

    def transform(self, points: np.ndarray) -> np.ndarray:
        return points @ self.matrix[:, :2].T + self.matrix[:, 2]

    def _fixed(self, points: np.ndarray) -> np.ndarray:
        fixed = np.floor(points @ self._linear + self._offset).astype(np.int32)
        return fixed.reshape(-1, 1, 2)

    def fill(self, points: np.ndarray, colour: tuple[int, int, int]) -> None:
        cv2.fillPoly(self.image, [self._fixed(points)], colour, _AA, _SHIFT)

    def line(
        self,
        points: np.ndarray,
        colour: tuple[int, int, int],
        thickness: float,
        closed: bool = False,
    ) -> None:
        width = max(1, int(round(thickness * self.scale)))
        cv2.polylines(self.image, [self._fixed(points)], closed, colour, width, _AA, _SHIFT)


def _ellipse(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    points = np.empty((len(_ARC), 2))
    points[:, 0] = cx + rx * _COS
    points[:, 1] = cy + ry * _SIN
    return points


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> np.ndarray:
    s = _BEZIER_S
    return (1 - s) ** 2 * p0 + 2 * (1 - s) * s * p1 + s**2 * p2


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, round(c * factor)))) for c in colour)  # type: ignore[return-value]


def _lerp(c0: tuple[int, int, int], c1: tuple[int, int, int], w: float) -> tuple[int, int, int]:
    return tuple(int(round(x * (1 - w) + y * w)) for x, y in zip(c0, c1, strict=True))  # type: ignore[return-value]


@dataclass(frozen=True)
class _Layout:
    size: int
    cx: float
    cy: float
    a: float
    b: float


def _draw_head(canvas: _Canvas, p: FaceParams, g: _Layout) -> None:
    """Clothes, hair, neck, ears, face outline: identical with and without droop."""
    cx, cy, a, b, size = g.cx, g.cy, g.a, g.b, g.size
    canvas.fill(_ellipse(cx, cy + b + 0.3 * size, 1.9 * a, 0.38 * size), p.clothes)
    if p.long_hair and not p.bald:
        canvas.fill(_ellipse(cx, cy + 0.1 * b, 1.18 * a, 1.08 * b), p.hair)
    neck = np.array(
        [
            [cx - 0.5 * a, cy + 0.4 * b],
            [cx + 0.5 * a, cy + 0.4 * b],
            [cx + 0.55 * a, cy + b + 0.4 * size],
            [cx - 0.55 * a, cy + b + 0.4 * size],
        ]
    )
    canvas.fill(neck, _shade(p.skin, 0.82))
    if p.ears:
        ear_y = cy - p.eye_height * b + 0.12 * b
        for sign in (-1.0, 1.0):
            canvas.fill(
                _ellipse(cx + sign * 0.97 * a, ear_y, 0.14 * a, 0.24 * b), _shade(p.skin, 0.9)
            )
    canvas.fill(_ellipse(cx, cy, a, b), p.skin)
    canvas.fill(_ellipse(cx, cy + 0.22 * b, p.jaw_width * a, 0.78 * b), p.skin)
    if not p.bald:
        hairline = cy - p.hairline * b
        height = hairline - (cy - b) + 0.07 * b
        theta = np.linspace(np.pi, 2 * np.pi, 21)
        dome = np.stack([cx + 1.04 * a * np.cos(theta), hairline + height * np.sin(theta)], 1)
        u = np.linspace(1.0, -1.0, 9)
        edge = np.stack([cx + 1.04 * a * u, hairline + 0.1 * b * u**2], 1)
        canvas.fill(np.concatenate([dome, edge]), p.hair)


def _draw_features(
    canvas: _Canvas,
    p: FaceParams,
    g: _Layout,
    affected: float,
    severity: float,
    sides: tuple[int, ...] = (0, 1),
    centre: bool = True,
) -> dict[str, tuple[float, float]]:
    """Eyes, brows and folds of `sides` (0 = image left), then if `centre` the nose, mouth
    and glasses; returns canonical landmarks."""
    cx, cy, a, b, size = g.cx, g.cy, g.a, g.b, g.size
    marks: dict[str, tuple[float, float]] = {}
    dark = _shade(p.skin, 0.35)
    brow_colour = _shade(tuple(min(h, s) for h, s in zip(p.hair, p.skin, strict=True)), 0.6)  # type: ignore[arg-type]
    ew = p.eye_width * a
    ey = cy - p.eye_height * b
    tip_y = cy + p.nose_length * b
    my = cy + p.mouth_height * b
    mw = p.mouth_width * a
    nw = p.nose_width * a

    for k in sides:
        sign = -1.0 if k == 0 else 1.0
        name = "image_left" if k == 0 else "image_right"
        d = severity if sign == affected else 0.0
        ex = cx + sign * p.eye_spacing * a
        eh = ew * p.eye_open * (1.0 + p.eye_jitter[k])
        eh_low = eh * (1.0 + DROOP_FISSURE * d)
        lower, upper = _LOWER_LID, _UPPER_LID
        lower_arc = np.stack([ex + ew * np.cos(lower), ey + eh_low * np.sin(lower)], 1)
        upper_arc = np.stack([ex + ew * np.cos(upper), ey + eh * np.sin(upper)], 1)
        canvas.fill(np.concatenate([lower_arc, upper_arc]), (236, 234, 228))
        iris_r = min(0.5 * ew, 0.95 * eh)
        canvas.fill(_ellipse(ex, ey, iris_r, iris_r), p.iris)
        canvas.fill(_ellipse(ex, ey, 0.45 * iris_r, 0.45 * iris_r), (12, 10, 10))
        canvas.line(upper_arc, dark, 0.009 * size)
        canvas.line(lower_arc, _shade(p.skin, 0.7), 0.004 * size)
        marks[f"{name}_eye_outer"] = (ex + sign * ew, ey)
        marks[f"{name}_eye_inner"] = (ex - sign * ew, ey)
        marks[f"{name}_eye_top"] = (ex, ey - eh)
        marks[f"{name}_eye_bottom"] = (ex, ey + eh_low)

        by = ey - eh - p.brow_gap * ew + (p.brow_jitter[k] + DROOP_BROW * d) * ew
        arch = p.brow_arch * ew * (1.0 - 0.5 * d)
        inner = np.array([ex - sign * 0.95 * ew, by + 0.1 * ew])
        mid = np.array([ex + sign * 0.15 * ew, by - arch])
        outer = np.array([ex + sign * 1.15 * ew, by + (0.25 + DROOP_BROW_OUTER * d) * ew])
        canvas.line(
            _bezier(inner, 2 * mid - 0.5 * (inner + outer), outer),
            brow_colour,
            p.brow_thickness * size,
        )
        marks[f"{name}_brow_inner"] = (float(inner[0]), float(inner[1]))
        marks[f"{name}_brow_mid"] = (float(mid[0]), float(mid[1]))
        marks[f"{name}_brow_outer"] = (float(outer[0]), float(outer[1]))

        start = np.array([cx + sign * (nw + 0.04 * a), tip_y - 0.03 * b])
        end = np.array([cx + sign * (mw + 0.1 * a), my + 0.1 * b])
        bend = np.array([cx + sign * (mw + 0.16 * a), 0.5 * (tip_y + my) - 0.02 * b])
        bend = bend + (0.5 * (start + end) - bend) * 0.9 * d
        fold = _lerp(_shade(p.skin, 1.0 - 0.35 * p.fold_strength), p.skin, DROOP_FOLD_FADE * d)
        canvas.line(_bezier(start, bend, end), fold, 0.009 * size)

    if not centre:
        return marks
    canvas.line(
        np.array([[cx + 0.02 * a, ey], [cx + 0.05 * a, tip_y - 0.05 * b]]),
        _shade(p.skin, 0.8),
        0.006 * size,
    )
    for sign in (-1.0, 1.0):
        canvas.fill(
            _ellipse(cx + sign * 0.55 * nw, tip_y, 0.06 * a, 0.035 * b), _shade(p.skin, 0.45)
        )
    canvas.line(
        _bezier(
            np.array([cx - nw, tip_y]), np.array([cx, tip_y + 0.09 * b]), np.array([cx + nw, tip_y])
        ),
        _shade(p.skin, 0.7),
        0.006 * size,
    )
    marks["nose_tip"] = (cx, tip_y + 0.045 * b)

    u = _MOUTH_U
    towards = np.maximum(0.0, affected * u)  # 0 on the healthy half, 1 at the affected corner
    jitter = (
        p.corner_jitter[0] * np.maximum(0.0, -u) ** 2 + p.corner_jitter[1] * np.maximum(0.0, u) ** 2
    ) * b
    line_y = my + DROOP_CORNER * severity * b * towards**1.6 + jitter
    xs = cx + u * mw * (1.0 - DROOP_CORNER_INWARD * severity * towards)
    body = np.sqrt(np.clip(1.0 - u**2, 0.0, 1.0))
    bow = 1.0 - 0.35 * np.exp(-((u / 0.12) ** 2))
    upper_y = line_y - p.upper_lip * b * body**1.2 * bow
    lower_y = line_y + p.lower_lip * b * body**1.4 + DROOP_LIP_SAG * severity * b * towards * body
    mouth_line = np.stack([xs, line_y], 1)
    canvas.fill(np.concatenate([np.stack([xs, upper_y], 1), mouth_line[::-1]]), p.lips)
    canvas.fill(
        np.concatenate([np.stack([xs, lower_y], 1), mouth_line[::-1]]), _shade(p.lips, 1.08)
    )
    canvas.line(mouth_line, _shade(p.lips, 0.5), 0.006 * size)
    marks["image_left_mouth_corner"] = (float(xs[0]), float(line_y[0]))
    marks["image_right_mouth_corner"] = (float(xs[-1]), float(line_y[-1]))
    marks["upper_lip_mid"] = (cx, float(upper_y[8]))
    marks["lower_lip_mid"] = (cx, float(lower_y[8]))

    if p.glasses:
        for sign in (-1.0, 1.0):
            ex = cx + sign * p.eye_spacing * a
            canvas.line(
                _ellipse(ex, ey, 1.45 * ew, 1.15 * ew), p.glasses_colour, 0.008 * size, closed=True
            )
            canvas.line(
                np.array([[ex + sign * 1.45 * ew, ey], [cx + sign * 0.97 * a, ey + 0.05 * b]]),
                p.glasses_colour,
                0.008 * size,
            )
        bridge = cx - p.eye_spacing * a + 1.45 * ew
        canvas.line(np.array([[bridge, ey], [2 * cx - bridge, ey]]), p.glasses_colour, 0.008 * size)
    return marks


def _pose_matrix(p: FaceParams, g: _Layout) -> np.ndarray:
    matrix = cv2.getRotationMatrix2D((g.cx, g.cy), p.roll, p.scale)
    matrix[:, 2] += np.array(p.shift) * g.size
    return matrix


def render_face(
    rng: np.random.Generator, label: str, severity: float, size: int = 224, **overrides: object
) -> SynthFace:
    """Draw one face with droop of `severity` on the patient's `label` side.

    Overrides replace single fields of FaceParams (e.g. roll=0.0, noise=0.0) after all
    random draws, so the rest of the face stays the same for the same generator state.
    """
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS}, not {label!r}")
    if not 0.0 <= severity <= 1.0:
        raise ValueError(f"severity must lie in [0, 1], not {severity}")
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, not {size}")
    p = sample_params(rng, **overrides)
    a = p.face_width * size
    g = _Layout(size=size, cx=size / 2.0, cy=0.47 * size, a=a, b=a * p.face_aspect)
    # Patient's left is the image's right (+x) in an unmirrored image.
    affected = 1.0 if label == "Left" else -1.0
    matrix = _pose_matrix(p, g)

    head = draw_background(p, size)
    _draw_head(_Canvas(head, matrix, p.scale), p, g)
    drawn = _Canvas(head, matrix, p.scale)
    # The healthy half is drawn once; only the affected half, the nose and the mouth (and
    # glasses over them) are drawn twice, with and without droop, for the mask.
    affected_side = 1 if affected > 0 else 0
    canonical = _draw_features(drawn, p, g, affected, 0.0, (1 - affected_side,), False)
    neutral = head.copy()
    _draw_features(_Canvas(neutral, matrix, p.scale), p, g, affected, 0.0, (affected_side,))
    canonical.update(_draw_features(drawn, p, g, affected, float(severity), (affected_side,)))
    channels = cv2.split(cv2.absdiff(neutral, head))
    mask = cv2.bitwise_or(cv2.bitwise_or(channels[0], channels[1]), channels[2]) > 0
    image = apply_imaging(head, p, rng)

    names = list(canonical)
    points = drawn.transform(np.array([canonical[n] for n in names], dtype=np.float64))
    landmarks = {n: (float(x), float(y)) for n, (x, y) in zip(names, points, strict=True)}
    outline = drawn.transform(
        np.concatenate(
            [
                _ellipse(g.cx, g.cy, a, g.b),
                _ellipse(g.cx, g.cy + 0.22 * g.b, p.jaw_width * a, 0.78 * g.b),
            ]
        )
    )
    low = np.clip(np.floor(outline.min(axis=0)), 0, size - 1).astype(int)
    high = np.clip(np.ceil(outline.max(axis=0)), 0, size - 1).astype(int)
    box = (int(low[0]), int(low[1]), int(high[0] - low[0] + 1), int(high[1] - low[1] + 1))
    return SynthFace(image, mask, label, float(severity), landmarks, box, p)


def _swap_side(name: str) -> str:
    if name.startswith("image_left_"):
        return "image_right_" + name[len("image_left_") :]
    if name.startswith("image_right_"):
        return "image_left_" + name[len("image_right_") :]
    return name


def mirror(face: SynthFace) -> SynthFace:
    """Flip left-right: the droop moves to the other image side, so the label swaps."""
    width = face.image.shape[1]
    landmarks = {_swap_side(n): (width - 1 - x, y) for n, (x, y) in face.landmarks.items()}
    x, y, w, h = face.face_box
    return SynthFace(
        image=np.ascontiguousarray(face.image[:, ::-1]),
        mask=np.ascontiguousarray(face.mask[:, ::-1]),
        label="Right" if face.label == "Left" else "Left",
        severity=face.severity,
        landmarks=landmarks,
        face_box=(width - x - w, y, w, h),
        params=face.params,
    )
