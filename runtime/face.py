"""Find the face and cut it out: OpenCV's bundled Haar cascade, on a downscaled frame.

Detection runs on a frame scaled down to `DETECT_WIDTH` pixels wide and skips faces
smaller than `MIN_FACE_FRACTION` of the frame (a full 640x480 Haar pass costs ~33 ms;
this one ~9-16 ms on a 2-vCPU VM); boxes come back in full-frame pixels. Between
detections `FaceTracker` follows the last box by template matching on the same small grey
image, which costs well under a millisecond. No face is an
ordinary result (None), never an error.

`Detector` is what the crop and the tracker need of any detector; BlazeFace
(`hemiface.runtime.blazeface`, carried by the model set) gives the same `detect`, plus the
keypoints and roll that the levelled crop (`hemiface.runtime.align`) uses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Protocol

import cv2
import numpy as np

from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.sysinfo import haar_cascade_path

DETECT_WIDTH = 240
MIN_FACE_FRACTION = 0.15  # of the smaller frame side: fewer cascade scales, faster
DEFAULT_MARGIN = 0.25  # of the face box side, added on every side of the crop
TRACK_MIN_SCORE = 0.5  # normalised cross-correlation below this loses the track
TRACK_SEARCH = 0.5  # search window: the box grown by this share of its side each way


@dataclass(frozen=True)
class FaceBox:
    """A face in full-frame pixel coordinates."""

    x: int
    y: int
    w: int
    h: int
    # From detectors with landmarks (BlazeFace); the Haar cascade leaves them empty.
    roll: float = 0.0  # degrees the eye line tilts clockwise on screen; 0: level or unknown
    keypoints: tuple[tuple[float, float], ...] = ()  # (x, y) in frame pixels
    score: float | None = None

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]

    @property
    def area(self) -> int:
        return self.w * self.h


def _small_grey(rgb: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    """Grey image at most `width` wide, and the factor from small to full coordinates."""
    height, full_width = rgb.shape[:2]
    scale = min(1.0, width / full_width)
    small = rgb
    if scale < 1.0:
        size = (max(1, round(full_width * scale)), max(1, round(height * scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY) if small.ndim == 3 else small
    return grey, 1.0 / scale


class Detector(Protocol):
    """What the crop and the tracker need of a face detector."""

    name: str
    detect_width: int  # the tracker matches on a grey image this wide

    def detect(self, rgb: np.ndarray, near: FaceBox | None = None) -> FaceBox | None:
        """The largest face, or None; `near`: the face in the frame before, if known."""
        ...


class FaceDetector:
    """The largest frontal face, found by the Haar cascade on a downscaled grey frame."""

    name = "haar"

    def __init__(self, detect_width: int = DETECT_WIDTH) -> None:
        path = haar_cascade_path()
        if path is None:
            raise HemifaceError(
                "this OpenCV build has no Haar face cascade (opencv-python 5 dropped them): "
                "pip install 'opencv-python>=4.8,<5', or use --crop none / center"
            )
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise HemifaceError(f"{path}: OpenCV could not load the Haar cascade")
        self.detect_width = detect_width

    def detect(self, rgb: np.ndarray, near: FaceBox | None = None) -> FaceBox | None:
        grey, factor = _small_grey(rgb, self.detect_width)
        grey = cv2.equalizeHist(grey)
        min_side = max(20, int(min(grey.shape) * MIN_FACE_FRACTION))
        faces = self.cascade.detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
        )
        if len(faces) == 0:
            return None
        x, y, w, h = max(faces, key=lambda f: int(f[2]) * int(f[3]))
        return FaceBox(round(x * factor), round(y * factor), round(w * factor), round(h * factor))


@lru_cache(maxsize=1)
def default_detector() -> FaceDetector:
    return FaceDetector()


def detect_face(rgb: np.ndarray, detector: Detector | None = None) -> FaceBox | None:
    """The largest face in an RGB image, or None when there is none."""
    return (detector or default_detector()).detect(rgb)


def crop_box(shape: tuple[int, ...], box: FaceBox, margin: float = DEFAULT_MARGIN) -> FaceBox:
    """A square around the face grown by `margin` on every side, kept inside the frame.

    Square, because the models take a square input: a tall box would be squashed.
    """
    height, width = shape[:2]
    side = round(max(box.w, box.h) * (1 + 2 * margin))
    side = max(1, min(side, width, height))
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    x = int(round(min(max(cx - side / 2, 0), width - side)))
    y = int(round(min(max(cy - side / 2, 0), height - side)))
    return FaceBox(x, y, side, side)


def crop_face(rgb: np.ndarray, box: FaceBox, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The square face crop (a view into `rgb`); see `crop_box`."""
    c = crop_box(rgb.shape, box, margin)
    return rgb[c.y : c.y + c.h, c.x : c.x + c.w]


def center_crop(rgb: np.ndarray) -> np.ndarray:
    """The largest centred square of the image."""
    height, width = rgb.shape[:2]
    side = min(height, width)
    y, x = (height - side) // 2, (width - side) // 2
    return rgb[y : y + side, x : x + side]


class FaceTracker:
    """Detect every `every` frames; follow the face by template matching in between."""

    def __init__(self, detector: Detector | None = None, every: int = 1) -> None:
        self.detector: Detector = detector or default_detector()
        self.every = max(1, every)
        self._count = 0
        self._box: FaceBox | None = None
        self._template: np.ndarray | None = None
        self._factor = 1.0

    def update(self, rgb: np.ndarray) -> tuple[FaceBox | None, bool]:
        """(box, detected): detected is True when the cascade ran on this frame."""
        due = self._count % self.every == 0 or self._box is None
        self._count += 1
        if due:
            self._box = self.detector.detect(rgb, near=self._box)
            self._remember(rgb)
            return self._box, True
        self._box = self._track(rgb)
        return self._box, False

    def _remember(self, rgb: np.ndarray) -> None:
        self._template = None
        if self._box is None or self.every == 1:
            return
        grey, self._factor = _small_grey(rgb, self.detector.detect_width)
        x, y, w, h = (round(v / self._factor) for v in self._box.as_list())
        patch = grey[y : y + h, x : x + w]
        if patch.shape[0] >= 8 and patch.shape[1] >= 8:
            self._template = patch.copy()

    def _track(self, rgb: np.ndarray) -> FaceBox | None:
        if self._box is None or self._template is None:
            return None
        grey, factor = _small_grey(rgb, self.detector.detect_width)
        th, tw = self._template.shape
        x, y = round(self._box.x / factor), round(self._box.y / factor)
        pad_x, pad_y = int(tw * TRACK_SEARCH), int(th * TRACK_SEARCH)
        x0, y0 = max(0, x - pad_x), max(0, y - pad_y)
        x1, y1 = min(grey.shape[1], x + tw + pad_x), min(grey.shape[0], y + th + pad_y)
        window = grey[y0:y1, x0:x1]
        if window.shape[0] < th or window.shape[1] < tw:
            return None
        scores = cv2.matchTemplate(window, self._template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (bx, by) = cv2.minMaxLoc(scores)
        if best < TRACK_MIN_SCORE:
            return None
        x, y = round((x0 + bx) * factor), round((y0 + by) * factor)
        dx, dy = x - self._box.x, y - self._box.y
        # The face moved as a whole: its keypoints and roll move with the box.
        keypoints = tuple((px + dx, py + dy) for px, py in self._box.keypoints)
        return replace(self._box, x=x, y=y, keypoints=keypoints)
