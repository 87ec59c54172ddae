"""The live loop as a function: frames in, face crop, every model, smoothing, results out.

`run_stream` needs no window: the CLI passes `show` (imshow + key handling) when it wants
one, tests and benchmarks pass `on_result` and read the returned `StreamStats`. What the
loop does is one `StreamSettings`, made (and checked) once; the detector, the callbacks
and the clock are passed beside it.

The models always see the unmirrored frame; `mirror` flips only the drawn preview. The
recording is never mirrored, so it shows the patient's sides as the models saw them.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
FPS_WINDOW = 30  # frames in the moving FPS estimate
# (box, detected, region, rotation, seconds): the face step of one frame.
FaceStep = tuple[FaceBox | None, bool, np.ndarray | None, float, float]
FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
DEFAULT_RECORD_FPS = 30.0


@dataclass(frozen=True)
class StreamSettings:
    """What the live loop does with each frame; checked when made.

    `crop` is one of CROPS; `every` runs the detector every N frames (tracking between);
    `smooth` is the EMA weight of the past in [0, 1); `mirror` flips the preview only;
    `record` writes the annotated (never mirrored) video at `record_fps` (default: the
    source's); `margin` and `level` shape the face crop; with `overlap` the next frame's
    face step runs beside this frame's models; a live source is reopened up to
    `max_reconnects` times in a row, the first wait `backoff` seconds.
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
    max_reconnects: int = MAX_RECONNECTS
    backoff: float = BACKOFF_S

    def __post_init__(self) -> None:
        if self.crop not in CROPS:
            raise HemifaceError(f"--crop must be {', '.join(CROPS[:-1])} or {CROPS[-1]}")
        if self.every < 1 or not 0.0 <= self.smooth < 1.0:
            raise HemifaceError("--every must be >= 1 and --smooth in [0, 1)")
        if self.max_frames is not None and self.max_frames < 1:
            raise HemifaceError(f"--max-frames must be 1 or more (got {self.max_frames})")
        if self.record is not None and not isinstance(self.record, Path):
            object.__setattr__(self, "record", Path(self.record))


@dataclass
class FrameResult:
    frame: int  # index of the frame from the source, from 0
    time: float  # seconds since the loop started
    box: FaceBox | None  # the face in full-frame pixels (crop="face" only)
    detected: bool  # the detector ran on this frame (False: tracked or no face step)
    raw: list[float] | None  # unsmoothed P(Right) per model; None when nothing ran
    prediction: SetPrediction | None  # from the smoothed probabilities
    fps: float
    rotation: float = 0.0  # degrees the crop was turned counter-clockwise to level the eyes

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "frame": self.frame,
            "time": round(self.time, 4),
            "face": self.box.as_list() if self.box else None,
            "rotation_deg": round(self.rotation, 1),
            "fps": round(self.fps, 2),
            "models": None,
            "ensemble": None,
        }
        if self.prediction is not None and self.raw is not None:
            # Probabilities unrounded: comparing runs across machines needs every digit.
            out["models"] = {
                m.name: {
                    "p": m.p,
                    "p_raw": float(raw),
                    "label": m.label,
                    "uncertain": m.uncertain,
                }
                for m, raw in zip(self.prediction.models, self.raw, strict=True)
            }
            out["ensemble"] = {
                "p": self.prediction.mean_p,
                "label": self.prediction.label,
                "agree": self.prediction.agree,
                "disagree": self.prediction.disagree,
                "uncertain": self.prediction.uncertain,
            }
            out["format"] = self.prediction.format
        return out


@dataclass
class StreamStats:
    frames: int = 0  # frames read and processed
    predicted: int = 0  # frames the models ran on
    no_face: int = 0
    seconds: float = 0.0
    reconnects: int = 0
    ended: str = ""  # "end of video", "max frames", "quit", "interrupted"
    record: Path | None = None
    stage_ms: dict[str, float] = field(default_factory=dict)  # mean per frame

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class Smoother:
    """EMA of probabilities across frames: s = a * s_prev + (1 - a) * p; a = 0 is off."""

    def __init__(self, alpha: float) -> None:
        if not 0.0 <= alpha < 1.0:
            raise ValueError("smoothing must be in [0, 1)")
        self.alpha = alpha
        self.state: np.ndarray | None = None

    def update(self, probs: list[float]) -> list[float]:
        current = np.asarray(probs, dtype=np.float64)
        if self.state is None or self.alpha == 0.0:
            self.state = current
        else:
            self.state = self.alpha * self.state + (1.0 - self.alpha) * current
        return [float(v) for v in self.state]

    def reset(self) -> None:
        self.state = None


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


def _reconnect(
    source: FrameSource,
    stats: StreamStats,
    failures: int,
    max_reconnects: int,
    backoff: float,
    sleep: Callable[[float], None],
    reason: str,
) -> int:
    """Reopen a live source with doubling waits; the new count of failures in a row."""
    while True:
        if failures >= max_reconnects:
            raise SourceError(f"{reason}; gave up after {max_reconnects} reconnect attempts")
        source.close()
        sleep(min(backoff * 2**failures, BACKOFF_MAX_S))
        failures += 1
        stats.reconnects += 1
        try:
            source.open()
            return failures
        except SourceError as exc:
            reason = str(exc)


def run_stream(
    source: FrameSource,
    model_set: ModelSet,
    settings: StreamSettings | None = None,
    *,
    detector: Detector | None = None,
    on_result: Callable[[FrameResult], None] | None = None,
    show: Callable[[np.ndarray], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> StreamStats:
    """Run the models on every frame of `source` until it ends, `max_frames`, quit or Ctrl-C.

    `settings` (default: `StreamSettings()`) says how each frame is handled; `detector`
    finds the face for crop "face" (None: the tracker's default).
    `show(bgr) -> quit?` displays the annotated frame; `on_result` gets each FrameResult.
    A live source that stops delivering frames is reopened with backoff (`sleep` waits)
    up to `max_reconnects` times in a row, then SourceError. Ctrl-C ends the loop cleanly
    (stats.ended == "interrupted"); the recording is released in every case.

    With `overlap`, the next frame is read as soon as this frame's face step is done, and
    its face step (detection or tracking, and the crop) runs on a second thread while the
    models run on this one. Results still come one a frame, in order; the source still
    hands out only its newest frame, and at most one frame waits ahead.
    """
    settings = settings if settings is not None else StreamSettings()
    crop, max_frames = settings.crop, settings.max_frames
    max_reconnects, backoff = settings.max_reconnects, settings.backoff
    tracker = FaceTracker(detector, settings.every) if crop == "face" else None
    smoother = Smoother(settings.smooth)
    thresholds = [e.threshold for e in model_set.entries]
    stats = StreamStats(record=settings.record)
    stage: collections.defaultdict[str, float] = collections.defaultdict(float)
    writer: cv2.VideoWriter | None = None
    frame_times: collections.deque[float] = collections.deque(maxlen=FPS_WINDOW)

    def face_step(rgb: np.ndarray) -> FaceStep:
        started = time.perf_counter()
        box, detected, rotation = (None, False, 0.0)
        region: np.ndarray | None
        if tracker is not None:
            box, detected = tracker.update(rgb)
            region = None
            if box is not None:
                region, rotation = align_face(rgb, box, settings.margin, settings.level)
        else:
            region = center_crop(rgb) if crop == "center" else rgb
        return box, detected, region, rotation, time.perf_counter() - started

    ahead_pool = (
        ThreadPoolExecutor(1, thread_name_prefix="hemiface-face") if settings.overlap else None
    )
    ahead: tuple[np.ndarray, float, Future[FaceStep]] | None = None  # frame, read s, face step
    start = time.perf_counter()
    failures = 0
    try:
        try:
            source.open()
        except SourceError as exc:
            if not source.live:
                raise
            failures = _reconnect(source, stats, failures, max_reconnects, backoff, sleep, str(exc))
        while max_frames is None or stats.frames < max_frames:
            t0 = time.perf_counter()
            step: FaceStep | None = None
            rgb: np.ndarray | None
            if ahead is not None:
                rgb, read_s, future = ahead
                ahead = None
                step = future.result()
                stage["face_wait"] += time.perf_counter() - t0
            else:
                rgb = source.read()
                read_s = time.perf_counter() - t0
            if rgb is None:
                if not source.live:
                    stats.ended = "end of video"
                    break
                failures = _reconnect(
                    source,
                    stats,
                    failures,
                    max_reconnects,
                    backoff,
                    sleep,
                    f"{source.name}: stopped delivering frames",
                )
                continue
            failures = 0
            quit_now = False
            box, detected, region, rotation, face_s = step or face_step(rgb)
            if ahead_pool is not None and (max_frames is None or stats.frames + 1 < max_frames):
                r0 = time.perf_counter()
                upcoming = source.read()  # None is met again by the next read
                if upcoming is not None:
                    read_next = time.perf_counter() - r0
                    ahead = (upcoming, read_next, ahead_pool.submit(face_step, upcoming))
            t2 = time.perf_counter()
            raw = prediction = None
            if region is None:
                stats.no_face += 1
                smoother.reset()
            else:
                raw = model_set.probabilities(region)
                prediction = model_set.combine(smoother.update(raw))
                stats.predicted += 1
            t3 = time.perf_counter()
            frame_times.append(t3 - t0)
            fps = len(frame_times) / sum(frame_times) if sum(frame_times) > 0 else 0.0
            if show is not None or stats.record is not None:
                status = "no face" if region is None else None
                if writer is None and stats.record is not None:
                    size = (rgb.shape[1], rgb.shape[0])
                    fps_out = (
                        settings.record_fps or getattr(source, "fps", None) or DEFAULT_RECORD_FPS
                    )
                    writer = open_writer(stats.record, size, fps_out)
                if writer is not None:
                    annotated = draw_overlay(
                        rgb, prediction, box, fps=fps, status=status, thresholds=thresholds
                    )
                    writer.write(annotated)
                if show is not None:
                    preview = draw_overlay(
                        rgb,
                        prediction,
                        box,
                        fps=fps,
                        mirror=settings.mirror,
                        status=status,
                        thresholds=thresholds,
                    )
                    quit_now = show(preview)
            t4 = time.perf_counter()
            for name, seconds in (("read", read_s), ("face", face_s), ("models", t3 - t2)):
                stage[name] += seconds
            stage["draw"] += t4 - t3
            result = FrameResult(
                frame=stats.frames,
                time=t3 - start,
                box=box,
                detected=detected,
                raw=raw,
                prediction=prediction,
                fps=fps,
                rotation=rotation,
            )
            stats.frames += 1
            if on_result is not None:
                on_result(result)
            if quit_now:
                stats.ended = "quit"
                break
        else:
            stats.ended = "max frames"
    except KeyboardInterrupt:
        stats.ended = "interrupted"
    finally:
        # Released whatever happens, so an interrupted recording is still a playable file.
        if ahead_pool is not None:
            ahead_pool.shutdown(wait=True)
        if writer is not None:
            writer.release()
        source.close()
        stats.seconds = time.perf_counter() - start
        if stats.frames:
            stats.stage_ms = {k: round(v / stats.frames * 1000, 3) for k, v in stage.items()}
    return stats
