"""BlazeFace, MediaPipe's face detectors (short and full range), decoded with numpy and OpenCV.

The models travel inside the model set (convert copies them there; the runtime checksums
them like a classifier) and run in the same TFLite interpreter as the classifiers. Each
takes one square RGB image scaled to [-1, 1] and answers, for each of its fixed anchors, 16
regression values and one raw score. The two differ only in size and anchor layout, as
MediaPipe's published graph configurations give them:

- short range (faces within about 2 m): 128x128 input, 896 anchors: the cell centres of a
  16x16 grid (stride 8, two anchors a cell), then of an 8x8 grid (stride 16, six a cell);
- full range (faces within about 5 m): 192x192 input, 2304 anchors: the cell centres of a
  48x48 grid (stride 4, one anchor a cell).

Every anchor has size 1, so decoding is plain offsets from its centre, in [0, 1]
coordinates of the input square:

- regression, in input pixels (divided by the input side): box centre offset (dx, dy),
  box size (w, h), then (x, y) of six keypoints, each an offset from the anchor centre;
- score: the sigmoid of the raw value clipped to +-100.

Anchors scoring above the model's minimum score are merged by weighted non-maximum
suppression: every box overlapping the best remaining one by more than `NMS_IOU` joins its
cluster, and the cluster becomes the score-weighted mean of its boxes and keypoints, with
the best score.

The frame is letterboxed first (scaled to fit the square, centred on black), as MediaPipe
does, so a face keeps its shape; boxes and keypoints come back in frame pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from hemiface.runtime.face import FaceBox


@dataclass(frozen=True)
class BlazeFaceModel:
    """One BlazeFace model's input size, anchor layout and score threshold."""

    kind: str  # the manifest's name for this model and its decoding
    range: str  # "short" | "full": the --detector choice that runs it alone
    input_size: int
    anchor_layers: tuple[tuple[int, int], ...]  # (stride in input pixels, anchors per cell)
    min_score: float

    @property
    def num_anchors(self) -> int:
        return sum((self.input_size // s) ** 2 * per_cell for s, per_cell in self.anchor_layers)


# MediaPipe uses 0.5 for the short-range model. On 800 face-free synthetic scenes (other
# seeds than the benchmark's) that gave 1.4 % false detections, 0.6 gave 0.25 %, and all of
# 300 faces were still found. MediaPipe's own full-range configuration uses 0.6.
SHORT_RANGE = BlazeFaceModel("blazeface-short-range", "short", 128, ((8, 2), (16, 6)), 0.6)
FULL_RANGE = BlazeFaceModel("blazeface-full-range", "full", 192, ((4, 1),), 0.6)
MODELS = (SHORT_RANGE, FULL_RANGE)
NUM_KEYPOINTS = 6
RAW_SCORE_CLIP = 100.0
NMS_IOU = 0.3
# Keypoints in the model's order, named by the IMAGE side they fall on in an unmirrored
# upright face (the patient's right eye is on the image's left).
KEYPOINTS = (
    "image_left_eye",
    "image_right_eye",
    "nose_tip",
    "mouth",
    "image_left_ear",
    "image_right_ear",
)
LEFT_EYE, RIGHT_EYE = 0, 1
# BlazeFace's box is tighter and lower than the Haar cascade's, which the crop margin was
# chosen for. Measured against Haar on the same faces, Haar's box is 1.25x as large
# (median of synthetic faces; 1.16x on scikit-image's astronaut) with its centre 0.15 of
# a side higher. The face box is moved and grown by that much (shift as a share of the
# box side, up is negative), so `--margin` means the same crop for either detector.
BOX_SHIFT_Y = -0.15
BOX_GROWTH = 1.2
DETECT_WIDTH = 240  # width of the grey image the tracker matches on between detections


@dataclass(frozen=True)
class Detection:
    """One face: box corners and keypoints in frame pixels, and its score."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    keypoints: tuple[tuple[float, float], ...]  # (x, y) in KEYPOINTS order
    score: float

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])

    @property
    def roll(self) -> float:
        """Degrees the eye line tilts clockwise on screen (image right eye lower: positive)."""
        (lx, ly), (rx, ry) = self.keypoints[LEFT_EYE], self.keypoints[RIGHT_EYE]
        return math.degrees(math.atan2(ry - ly, rx - lx))

    def face_box(self) -> FaceBox:
        x0, y0, x1, y1 = self.box
        side_w, side_h = x1 - x0, y1 - y0
        cx = (x0 + x1) / 2
        cy = (y0 + y1) / 2 + BOX_SHIFT_Y * side_h
        w, h = side_w * BOX_GROWTH, side_h * BOX_GROWTH
        return FaceBox(
            round(cx - w / 2),
            round(cy - h / 2),
            max(1, round(w)),
            max(1, round(h)),
            roll=self.roll,
            keypoints=self.keypoints,
            score=self.score,
        )


def make_anchors(model: BlazeFaceModel = SHORT_RANGE) -> np.ndarray:
    """Anchor centres (N, 2) as (x, y) in [0, 1]: layer by layer, row by row, each cell's
    anchors together."""
    centres = []
    for stride, per_cell in model.anchor_layers:
        cells = model.input_size // stride
        ticks = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        xx, yy = np.meshgrid(ticks, ticks)  # yy varies by row, xx along it
        grid = np.stack([xx.ravel(), yy.ravel()], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres)


def sigmoid_scores(raw: np.ndarray) -> np.ndarray:
    """Scores in (0, 1) from the raw logits, clipped first (exp(100) overflows float32)."""
    clipped = np.clip(np.asarray(raw, np.float64).reshape(-1), -RAW_SCORE_CLIP, RAW_SCORE_CLIP)
    return 1.0 / (1.0 + np.exp(-clipped))


def decode(raw: np.ndarray, anchors: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) as x0, y0, x1, y1 and keypoints (N, K, 2), in [0, 1] input coordinates.

    `raw` is (N, 4 + 2K): centre offset, size, then keypoint offsets, in input pixels;
    `scale` is the input side in pixels.
    """
    values = np.asarray(raw, np.float64).reshape(len(anchors), -1) / scale
    centre = values[:, 0:2] + anchors
    half = values[:, 2:4] / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = values[:, 4:].reshape(len(anchors), -1, 2) + anchors[:, np.newaxis, :]
    return boxes, keypoints


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one x0, y0, x1, y1 box with each of `boxes`."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    iou: np.ndarray = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float = NMS_IOU
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Clusters of overlapping boxes merged into their score-weighted mean, best first.

    Each result is (box, keypoints, score) with the score of the cluster's best member.
    Boxes with no area are dropped first: they overlap nothing, not even themselves.
    """
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, keypoints, scores = boxes[valid], keypoints[valid], scores[valid]
    remaining = np.argsort(-scores, kind="stable")
    merged: list[tuple[np.ndarray, np.ndarray, float]] = []
    while remaining.size:
        best = remaining[0]
        overlap = box_iou(boxes[best], boxes[remaining])
        cluster = remaining[overlap > iou_threshold]
        weights = scores[cluster]
        total = float(weights.sum())
        box = (boxes[cluster] * weights[:, np.newaxis]).sum(axis=0) / total
        points = (keypoints[cluster] * weights[:, np.newaxis, np.newaxis]).sum(axis=0) / total
        merged.append((box, points, float(scores[best])))
        remaining = remaining[overlap <= iou_threshold]
    return merged


@dataclass(frozen=True)
class Letterbox:
    """Where the frame sits in the square input: input = frame * scale + pad, per axis."""

    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int

    def to_frame(self, points: np.ndarray, size: int) -> np.ndarray:
        """Points (..., 2) in [0, 1] input coordinates to frame pixels."""
        out = np.empty_like(points, dtype=np.float64)
        out[..., 0] = (points[..., 0] * size - self.pad_x) / self.scale_x
        out[..., 1] = (points[..., 1] * size - self.pad_y) / self.scale_y
        return out


def letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """The frame scaled to fit a size x size square, centred on black (RGB uint8)."""
    if rgb.ndim == 2:
        rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)
    height, width = rgb.shape[:2]
    fit = size / max(height, width)
    new_w, new_h = max(1, round(width * fit)), max(1, round(height * fit))
    small = cv2.resize(rgb[..., :3], (new_w, new_h), interpolation=cv2.INTER_AREA)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    square = np.zeros((size, size, 3), np.uint8)
    square[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = small
    return square, Letterbox(new_w / width, new_h / height, pad_x, pad_y)


def _output_indices(interpreter: Any, model: BlazeFaceModel) -> tuple[int, int]:
    """(regressors, classificators) tensor indices, recognised by shape; ValueError if absent."""
    side, anchors = model.input_size, model.num_anchors
    inputs = interpreter.get_input_details()
    if len(inputs) != 1 or list(inputs[0]["shape"]) != [1, side, side, 3]:
        raise ValueError(f"expected one [1, {side}, {side}, 3] input")
    if inputs[0]["dtype"] != np.float32:
        raise ValueError("expected a float32 input")
    regressors = classificators = None
    for detail in interpreter.get_output_details():
        shape = list(detail["shape"])
        if shape == [1, anchors, 4 + 2 * NUM_KEYPOINTS]:
            regressors = detail["index"]
        elif shape == [1, anchors, 1]:
            classificators = detail["index"]
    if regressors is None or classificators is None:
        raise ValueError(
            f"expected outputs [1, {anchors}, {4 + 2 * NUM_KEYPOINTS}] and "
            f"[1, {anchors}, 1]: not a BlazeFace {model.range}-range model"
        )
    return regressors, classificators


class BlazeFaceDetector:
    """The largest face one BlazeFace model finds, behind the same `detect` as Haar's."""

    name: str  # "blazeface-short" | "blazeface-full": the model it runs

    def __init__(
        self,
        interpreter: Any,
        model: BlazeFaceModel = SHORT_RANGE,
        min_score: float | None = None,
        detect_width: int = DETECT_WIDTH,
    ) -> None:
        self.interpreter = interpreter
        self.model = model
        self.name = f"blazeface-{model.range}"
        self.min_score = model.min_score if min_score is None else min_score
        self.detect_width = detect_width
        self._input = interpreter.get_input_details()[0]["index"]
        self._regressors, self._classificators = _output_indices(interpreter, model)
        self.anchors = make_anchors(model)

    def detect_all(self, rgb: np.ndarray, min_score: float | None = None) -> list[Detection]:
        """Every face in an RGB frame scoring above `min_score` (the detector's own when
        None), best score first."""
        side = self.model.input_size
        square, placement = letterbox(rgb, side)
        tensor = square.astype(np.float32)[np.newaxis] * np.float32(2.0 / 255.0) - np.float32(1)
        self.interpreter.set_tensor(self._input, tensor)
        self.interpreter.invoke()
        scores = sigmoid_scores(self.interpreter.get_tensor(self._classificators))
        keep = np.flatnonzero(scores > (self.min_score if min_score is None else min_score))
        if keep.size == 0:
            return []
        raw = self.interpreter.get_tensor(self._regressors)[0][keep]
        boxes, keypoints = decode(raw, self.anchors[keep], float(side))
        found = []
        for box, points, score in weighted_nms(boxes, keypoints, scores[keep]):
            corners = placement.to_frame(box.reshape(2, 2), side).reshape(-1)
            frame_points = placement.to_frame(points, side)
            found.append(
                Detection(
                    box=tuple(float(v) for v in corners),  # type: ignore[arg-type]
                    keypoints=tuple((float(x), float(y)) for x, y in frame_points),
                    score=score,
                )
            )
        return found

    def detect(self, rgb: np.ndarray, near: FaceBox | None = None) -> FaceBox | None:
        """The largest face in an RGB frame, or None when there is none (one model, one
        pass over the whole frame: `near` is not used)."""
        return largest_face(self.detect_all(rgb))


def largest_face(found: list[Detection]) -> FaceBox | None:
    """The face box of the largest detection, or None."""
    if not found:
        return None
    return max(found, key=lambda d: d.area).face_box()
