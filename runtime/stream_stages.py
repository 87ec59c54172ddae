"""The live loop's stages, each one job: read a frame (reopening a live source that
stops), find the face, run the models, draw and record. `runtime.pipeline.run_stream`
composes them; `runtime.lanes` says which thread runs which.

The models always see the unmirrored frame; `mirror` flips only the drawn preview. The
recording is never mirrored, so it shows the patient's sides as the models saw them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from hemiface.runtime.align import align_face
from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.face import DEFAULT_MARGIN, Detector, FaceBox, FaceTracker, center_crop
from hemiface.runtime.modelset import ModelSet, SetPrediction
from hemiface.runtime.overlay import draw_overlay
from hemiface.runtime.sources import FrameSource, SourceError

CROPS = ("none", "face", "center")
MAX_RECONNECTS = 5
BACKOFF_S = 0.5  # first wait before reopening a camera; doubles each attempt
BACKOFF_MAX_S = 8.0
FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
DEFAULT_RECORD_FPS = 30.0


@dataclass(frozen=True)
class StreamSettings:
    """What the live loop does with each frame; checked when made.

    `crop` is one of CROPS; `every` runs the detector every N frames (tracking between);
    `smooth` is the EMA weight of the past in [0, 1); `mirror` flips the preview only;
    `record` writes the annotated (never mirrored) video at `record_fps` (default: the
    source's); `margin` and `level` shape the face crop; `overlap` runs the next frame's
    read and face step beside this frame's models; `lanes` > 1 processes that many frames
    side by side, each on its own thread with its own interpreters (see runtime.lanes); a
    live source is reopened up to `max_reconnects` times in a row, the first wait
    `backoff` seconds.
    """

    crop: str = "face"
    every: int = 1
    smooth: float = 0.0
    mirror: bool = False
    record: Path | None = None
    record_fps: float | None = None
    max_frames: int | None = None
    margin: float = DEFAULT_MARGIN
    level: bool = True
    overlap: bool = False
    lanes: int = 1
    max_reconnects: int = MAX_RECONNECTS
    backoff: float = BACKOFF_S

    def __post_init__(self) -> None:
        if self.crop not in CROPS:
            raise HemifaceError(f"--crop must be {', '.join(CROPS[:-1])} or {CROPS[-1]}")
        if self.every < 1 or not 0.0 <= self.smooth < 1.0:
            raise HemifaceError("--every must be >= 1 and --smooth in [0, 1)")
        if self.max_frames is not None and self.max_frames < 1:
            raise HemifaceError(f"--max-frames must be 1 or more (got {self.max_frames})")
        if self.lanes < 1:
            raise HemifaceError(f"lanes must be 1 or more (got {self.lanes})")
        if self.record is not None and not isinstance(self.record, Path):
            object.__setattr__(self, "record", Path(self.record))


@dataclass
class Frame:
    index: int  # of the frame from the source, from 0
    rgb: np.ndarray
    read_s: float


@dataclass
class FaceStep:
    """The face step of one frame: the box (crop "face"), whether the detector ran, the
    region the models see (None: no face) and the crop's rotation."""

    box: FaceBox | None
    detected: bool
    region: np.ndarray | None
    rotation: float
    seconds: float


@dataclass
class Processed:
    """One frame after its face step and models (raw: unsmoothed P(Right) per model)."""

    frame: Frame
    face: FaceStep
    raw: list[float] | None
    models_s: float
    done_at: float  # perf_counter() when the models finished
    stage_s: dict[str, float] = field(default_factory=dict)


class FrameReader:
    """Frames from a source, counted; a live source that stops is reopened with doubling
    waits, up to `max_reconnects` times in a row, then SourceError."""

    def __init__(
        self, source: FrameSource, settings: StreamSettings, sleep: Callable[[float], None]
    ) -> None:
        self.source, self.settings, self.sleep = source, settings, sleep
        self.reconnects = 0
        self.count = 0
        self._failures = 0

    def open(self) -> None:
        try:
            self.source.open()
        except SourceError as exc:
            if not self.source.live:
                raise
            self._reconnect(str(exc))

    def read(self) -> Frame | None:
        """The next frame; None at the end of a video (never for a live source)."""
        while True:
            started = time.perf_counter()
            rgb = self.source.read()
            if rgb is not None:
                self._failures = 0
                frame = Frame(self.count, rgb, time.perf_counter() - started)
                self.count += 1
                return frame
            if not self.source.live:
                return None
            self._reconnect(f"{self.source.name}: stopped delivering frames")

    def _reconnect(self, reason: str) -> None:
        limit, backoff = self.settings.max_reconnects, self.settings.backoff
        while True:
            if self._failures >= limit:
                raise SourceError(f"{reason}; gave up after {limit} reconnect attempts")
            self.source.close()
            self.sleep(min(backoff * 2**self._failures, BACKOFF_MAX_S))
            self._failures += 1
            self.reconnects += 1
            try:
                self.source.open()
                return
            except SourceError as exc:
                reason = str(exc)

    def close(self) -> None:
        self.source.close()


class FaceStage:
    """Crop "face": detect (or track between detections) and align; "center": the middle
    square; "none": the whole frame."""

    def __init__(self, settings: StreamSettings, detector: Detector | None) -> None:
        self.settings = settings
        face = settings.crop == "face"
        self.tracker = FaceTracker(detector, settings.every) if face else None

    def __call__(self, rgb: np.ndarray) -> FaceStep:
        started = time.perf_counter()
        box, detected, rotation = None, False, 0.0
        region: np.ndarray | None
        if self.tracker is not None:
            box, detected = self.tracker.update(rgb)
            region = None
            if box is not None:
                region, rotation = align_face(rgb, box, self.settings.margin, self.settings.level)
        else:
            region = center_crop(rgb) if self.settings.crop == "center" else rgb
        return FaceStep(box, detected, region, rotation, time.perf_counter() - started)


def classify(frame: Frame, face: FaceStep, model_set: ModelSet) -> Processed:
    """The models on the frame's face region (nothing when there is none)."""
    started = time.perf_counter()
    raw = model_set.probabilities(face.region) if face.region is not None else None
    done = time.perf_counter()
    return Processed(frame, face, raw, done - started, done)


class Presenter:
    """Draws the overlay for the window (`show`) and the recording, only when one of the
    two wants it; the recording's writer opens on the first frame and is released on
    close, whatever ended the loop, so an interrupted recording is still playable."""

    def __init__(
        self,
        settings: StreamSettings,
        thresholds: list[float],
        show: Callable[[np.ndarray], bool] | None,
        source_fps: float | None,
    ) -> None:
        self.settings, self.thresholds, self.show = settings, thresholds, show
        self.source_fps = source_fps
        self.writer: cv2.VideoWriter | None = None
        self.frames_written = 0

    def __call__(
        self,
        rgb: np.ndarray,
        prediction: SetPrediction | None,
        face: FaceStep,
        fps: float,
    ) -> bool:
        """Draw, record and show one frame; True when the viewer asked to quit."""
        record = self.settings.record
        if self.show is None and record is None:
            return False
        status = "no face" if face.region is None else None

        def draw(mirror: bool) -> np.ndarray:
            return draw_overlay(
                rgb, prediction, face.box, fps=fps, mirror=mirror, status=status,
                thresholds=self.thresholds,
            )  # fmt: skip

        if record is not None:
            if self.writer is None:
                fps_out = self.settings.record_fps or self.source_fps or DEFAULT_RECORD_FPS
                self.writer = open_writer(record, (rgb.shape[1], rgb.shape[0]), fps_out)
            self.writer.write(draw(mirror=False))
            self.frames_written += 1
        if self.show is None:
            return False
        return self.show(draw(mirror=self.settings.mirror))

    def release(self) -> None:
        """Close the recording, whatever ended the loop."""
        if self.writer is not None:
            self.writer.release()
            self.writer = None

    def check(self) -> None:
        """SourceError when frames were written but the file cannot be read back (a full
        disk, say): a recording that reports success must play."""
        record = self.settings.record
        if record is not None and self.frames_written and not _playable(record):
            raise SourceError(f"{record}: the recording could not be written (disk full?)")


def open_writer(path: Path, size: tuple[int, int], fps: float) -> cv2.VideoWriter:
    """A VideoWriter for the annotated video: mp4v for .mp4, MJPG for .avi/.mkv."""
    path = Path(path)
    fourcc = FOURCC_BY_SUFFIX.get(path.suffix.lower())
    if fourcc is None:
        raise SourceError(f"{path}: record to .mp4 (mp4v) or .avi (MJPG)")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        raise SourceError(f"{path}: OpenCV cannot write {fourcc} video here")
    return writer


def _playable(path: Path) -> bool:
    """The recording exists, is not empty and OpenCV reads a frame back from it."""
    try:
        if os.path.getsize(path) == 0:
            return False
    except OSError:
        return False
    capture = cv2.VideoCapture(str(path))
    try:
        ok, _ = capture.read() if capture.isOpened() else (False, None)
        return bool(ok)
    finally:
        capture.release()
