"""The default face search: BlazeFace short range first, the rest only when it finds nothing.

The short-range model (128x128, the whole frame letterboxed) finds a face that fills a
good part of the frame in one cheap pass, and that is the usual frame. When it finds
nothing, the search goes on, each step only when the ones before found nothing:

1. `near`: in the live loop, the square around the last frame's face, `NEAR_FACTOR` times
   its side, through the short-range model. A face far away that was found once is found
   again for about the cost of one short-range pass.
2. `full`: the full-range model (192x192) on the whole frame.
3. `tiles`: the full-range model on overlapping square tiles (a 640x480 frame gives 3x2
   tiles of 298 px, each scaled to the model's 192x192: the face is seen at about twice
   the scale of step 2; a larger frame gets more tiles of the same size).
4. `fine tiles`: the short-range model on smaller tiles (5x3 tiles of 216 px, each
   scaled to 128x128), a second scale and a second model for the small, faint faces
   (dark skin in a dim scene, mostly) that step 3 scores just under its threshold.

The detections of all tiles of a step are merged by weighted non-maximum suppression in
frame pixels. Whatever step finds a face ends the search, so the two tile steps, the slow
ones, run only on frames where everything cheaper found nothing: frames with no face, or a
face too small or too faint for the whole-frame passes. In a stream (`tiles_every` > 1,
the live loop's `STREAM_TILES_EVERY`) they run on every Nth of a run of frames where
nothing is found, so a scene with nobody in it does not pay for them on every frame; once
a face is found, the `near` step follows it cheaply. A still image always gets every step.

The scores: a false face at an early step ends the search with the wrong answer, so the
short-range model must score 0.7 here (MediaPipe's 0.5, the detector alone 0.6). On 3,000
face-free synthetic scenes (seeds of their own) it fired on 16 at 0.6 and on 2 at 0.7,
and a face it then leaves is found by the full-range model, which fired on none even at
0.5; the tile steps fired on 1 (full range, 0.55) and 2 (short range, 0.7).
`benchmarks/face_detection.py` measures each step and the whole search by face size and
skin tone; the README gives the figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hemiface.runtime.blazeface import (
    BlazeFaceDetector,
    Detection,
    largest_face,
    weighted_nms,
)
from hemiface.runtime.face import FaceBox

SHORT_MIN_SCORE = 0.7  # the short-range model's score in the search (whole frame and near)
NEAR_FACTOR = 3.0  # the square searched around the last face, in face-box sides
NEAR_MIN_SIDE = 96  # pixels: never smaller than this, so a tiny box still has context
TILE_MIN_OVERLAP = 0.35  # neighbouring tiles share at least this share of a tile
# Tiles are sized as for a frame this many pixels on its shorter side, so a face of a given
# size in pixels is seen at the same scale in a larger frame (a 1280x720 frame gets more
# tiles, not larger ones: it costs more, it misses no more). Up to a point: tiles are never
# sized for less than half the frame's shorter side, so a 12-megapixel photo is searched
# in tens of tiles, not hundreds, and its faces are found from about 1/6 of its height.
TILE_REFERENCE_SIDE = 480
STREAM_TILES_EVERY = 3  # in a stream: the tile steps on every third frame with nothing found


@dataclass(frozen=True)
class TilePass:
    """One tile step: which model, a tile's side as a share of the frame's shorter side,
    and the score a detection needs."""

    model: str  # "short" | "full"
    fraction: float
    min_score: float


TILE_PASSES = {
    "tiles": TilePass("full", 0.62, 0.55),
    "fine tiles": TilePass("short", 0.45, 0.7),
}
STEPS = ("short", "near", "full", *TILE_PASSES)
STEP_MODEL = {"short": "short", "near": "short", "full": "full"} | {
    step: tiles.model for step, tiles in TILE_PASSES.items()
}  # the model each step runs
STEP_TEXT = {
    "short": "short range",
    "near": "near the last face",
    "full": "full range",
    "tiles": "full range on tiles",
    "fine tiles": "short range on fine tiles",
}


def search_steps(has_full: bool) -> tuple[str, ...]:
    """The steps a search runs: all of them, or those of the short-range model alone."""
    return tuple(step for step in STEPS if has_full or STEP_MODEL[step] == "short")


def tile_origins(width: int, height: int, fraction: float) -> list[tuple[int, int, int]]:
    """(x, y, side) of square tiles covering a frame, evenly spread, overlapping."""
    shorter = min(width, height)
    reference = min(shorter, max(TILE_REFERENCE_SIDE, shorter / 2))
    side = max(1, round(fraction * reference))
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
    """Short range, near the last face, full range, then the two tile steps."""

    name = "blazeface"

    def __init__(
        self,
        short: BlazeFaceDetector,
        full: BlazeFaceDetector | None,
        tiles_every: int = 1,
    ) -> None:
        self.short = short
        self.full = full
        self.tiles_every = max(1, tiles_every)
        self.step_order = search_steps(full is not None)
        self.detect_width = short.detect_width
        self.last_step: str | None = None  # the step that found the last face, or None
        self._empty_run = 0  # frames in a row where nothing was found

    def detect_all(self, rgb: np.ndarray, near: FaceBox | None = None) -> list[Detection]:
        """Every face the first successful step finds, best score first."""
        tiles_due = self._empty_run % self.tiles_every == 0
        for step in self.step_order:
            if step in TILE_PASSES and not tiles_due:
                break
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
            return self.short.detect_all(rgb, min_score=SHORT_MIN_SCORE)
        if step == "near":
            return self._near(rgb, near) if near is not None else []
        if step == "full":
            assert self.full is not None  # search_steps leaves it out otherwise
            return self.full.detect_all(rgb)
        return self._tiles(rgb, TILE_PASSES[step])

    def _near(self, rgb: np.ndarray, box: FaceBox) -> list[Detection]:
        height, width = rgb.shape[:2]
        side = max(NEAR_MIN_SIDE, NEAR_FACTOR * max(box.w, box.h))
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        x0, y0 = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
        x1, y1 = min(width, round(cx + side / 2)), min(height, round(cy + side / 2))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return []
        found = self.short.detect_all(rgb[y0:y1, x0:x1], min_score=SHORT_MIN_SCORE)
        return _shifted(found, x0, y0)

    def _tiles(self, rgb: np.ndarray, tiles: TilePass) -> list[Detection]:
        model = self.short if tiles.model == "short" else self.full
        assert model is not None  # search_steps leaves it out otherwise
        height, width = rgb.shape[:2]
        found: list[Detection] = []
        for x, y, side in tile_origins(width, height, tiles.fraction):
            hits = model.detect_all(rgb[y : y + side, x : x + side], min_score=tiles.min_score)
            found.extend(_shifted(hits, x, y))
        return merge(found)
