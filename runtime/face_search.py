"""The default face search: BlazeFace short range first, the full-range model when it finds nothing.

The short-range model (128x128, the whole frame letterboxed) finds a face that fills a
good part of the frame in one cheap pass, and that is the usual frame. When it finds
nothing, the search goes on, each step only when the one before found nothing:

1. `near`: in the live loop, the square around the last frame's face, `NEAR_FACTOR` times
   its side, through the short-range model. A face far away that was found once is found
   again for about the cost of one short-range pass.
2. `full`: the full-range model (192x192) on the whole frame.
3. `tiles`: the full-range model on overlapping square tiles of the frame (a 640x480 frame
   gives 3x2 tiles of 298 px, each scaled up to the model's 192x192: the face is seen at
   about twice the scale of step 2). The detections of all tiles are merged by weighted
   non-maximum suppression in frame pixels.

Whatever step finds a face ends the search. The last step is the slow one, so it runs only
on frames where everything cheaper found nothing: frames with no face, or a face too small
or too faint for the whole-frame passes. In a stream (`tiles_every` > 1, the live loop's
`STREAM_TILES_EVERY`) it runs on every Nth of a run of frames where nothing is found, so a
scene with nobody in it does not pay for it on every frame; once a face is found, the
`near` step follows it cheaply. A still image always gets every step.
`benchmarks/face_detection.py` measures each step and the whole search by face size and
skin tone; the README gives the figures.
"""

from __future__ import annotations

import math

import numpy as np

from hemiface.runtime.blazeface import (
    BlazeFaceDetector,
    Detection,
    largest_face,
    weighted_nms,
)
from hemiface.runtime.face import FaceBox

NEAR_FACTOR = 3.0  # the square searched around the last face, in face-box sides
NEAR_MIN_SIDE = 96  # pixels: never smaller than this, so a tiny box still has context
TILE_FRACTION = 0.62  # a tile's side as a share of the frame's shorter side
TILE_MIN_OVERLAP = 0.35  # neighbouring tiles share at least this share of a tile
# The full-range model's scores on tiles of face-free scenes stay lower than on whole
# frames, and a small face's best score is often just under MediaPipe's 0.6 there;
# the benchmark's face-free scenes set how far it may go down.
TILE_MIN_SCORE = 0.55
STREAM_TILES_EVERY = 3  # in a stream: the tiles on every third frame while nothing is found
STEPS = ("short", "near", "full", "tiles")


def tile_origins(width: int, height: int) -> list[tuple[int, int, int]]:
    """(x, y, side) of square tiles covering a frame, evenly spread, overlapping."""
    side = max(1, round(TILE_FRACTION * min(width, height)))
    step = side * (1.0 - TILE_MIN_OVERLAP)

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        count = math.ceil((length - side) / step) + 1
        return [round(i * (length - side) / (count - 1)) for i in range(count)]

    return [(x, y, side) for y in starts(height) for x in starts(width)]


def _shifted(found: list[Detection], dx: float, dy: float) -> list[Detection]:
    return [
        Detection(
            box=(d.box[0] + dx, d.box[1] + dy, d.box[2] + dx, d.box[3] + dy),
            keypoints=tuple((x + dx, y + dy) for x, y in d.keypoints),
            score=d.score,
        )
        for d in found
    ]


def merge(found: list[Detection]) -> list[Detection]:
    """Detections from overlapping regions merged by weighted NMS, best score first."""
    if len(found) < 2:
        return found
    boxes = np.array([d.box for d in found], np.float64)
    points = np.array([d.keypoints for d in found], np.float64)
    scores = np.array([d.score for d in found], np.float64)
    return [
        Detection(
            box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
            keypoints=tuple((float(x), float(y)) for x, y in p),
            score=score,
        )
        for b, p, score in weighted_nms(boxes, points, scores)
    ]


class FaceSearch:
    """Short range, then near the last face, then full range, then full range on tiles."""

    name = "blazeface"

    def __init__(
        self,
        short: BlazeFaceDetector,
        full: BlazeFaceDetector | None,
        tile_min_score: float = TILE_MIN_SCORE,
        tiles_every: int = 1,
    ) -> None:
        self.short = short
        self.full = full
        self.tile_min_score = tile_min_score
        self.tiles_every = max(1, tiles_every)
        self.detect_width = short.detect_width
        self.last_step: str | None = None  # the step that found the last face, or None
        self._empty_run = 0  # frames in a row where nothing was found

    def detect_all(self, rgb: np.ndarray, near: FaceBox | None = None) -> list[Detection]:
        """Every face the first successful step finds, best score first."""
        tiles_due = self._empty_run % self.tiles_every == 0
        for step in STEPS if tiles_due else STEPS[:-1]:
            found = self._step(step, rgb, near)
            if found:
                self.last_step = step
                self._empty_run = 0
                return found
        self.last_step = None
        self._empty_run += 1
        return []

    def detect(self, rgb: np.ndarray, near: FaceBox | None = None) -> FaceBox | None:
        """The largest face, or None; `near` is where the face was in the frame before."""
        return largest_face(self.detect_all(rgb, near))

    def _step(self, step: str, rgb: np.ndarray, near: FaceBox | None) -> list[Detection]:
        if step == "short":
            return self.short.detect_all(rgb)
        if step == "near":
            return self._near(rgb, near) if near is not None else []
        if self.full is None:
            return []
        if step == "full":
            return self.full.detect_all(rgb)
        return self._tiles(rgb)

    def _near(self, rgb: np.ndarray, box: FaceBox) -> list[Detection]:
        height, width = rgb.shape[:2]
        side = max(NEAR_MIN_SIDE, NEAR_FACTOR * max(box.w, box.h))
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        x0, y0 = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
        x1, y1 = min(width, round(cx + side / 2)), min(height, round(cy + side / 2))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return []
        return _shifted(self.short.detect_all(rgb[y0:y1, x0:x1]), x0, y0)

    def _tiles(self, rgb: np.ndarray) -> list[Detection]:
        assert self.full is not None
        height, width = rgb.shape[:2]
        found: list[Detection] = []
        for x, y, side in tile_origins(width, height):
            tile = rgb[y : y + side, x : x + side]
            hits = self.full.detect_all(tile, min_score=self.tile_min_score)
            found.extend(_shifted(hits, x, y))
        return merge(found)
