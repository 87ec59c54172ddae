"""The live loop: frames in, face crop, every model, smoothing, results out.

`run_stream` needs no window: the CLI passes `show` (imshow + key handling) when it wants
one, tests and benchmarks pass `on_result` and read the returned `StreamStats`. It reads
top to bottom like a camera example: the stages (`stream_stages`: read, face, models,
draw and record) are composed by one loop, and `lanes` decides which thread runs what.
What the loop does is one `StreamSettings`, made (and checked) once.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.face import Detector, FaceBox
from hemiface.runtime.lanes import Lane, processed_frames
from hemiface.runtime.modelset import ModelSet, SetPrediction
from hemiface.runtime.sources import FrameSource
from hemiface.runtime.stream_stages import (
    CROPS,
    FOURCC_BY_SUFFIX,
    FaceStage,
    FrameReader,
    Presenter,
    Processed,
    StreamSettings,
    open_writer,
)

__all__ = [
    "CROPS",
    "FOURCC_BY_SUFFIX",
    "FrameResult",
    "Smoother",
    "StreamSettings",
    "StreamStats",
    "open_writer",
    "run_stream",
]
FPS_WINDOW = 30  # results in the moving FPS estimate
OpenLane = Callable[[], tuple[ModelSet, Detector | None]]


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
    stage_ms: dict[str, float] = field(default_factory=dict)  # this frame's read, face, models

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

    def ceiling_fps(self, cores: int) -> float | None:
        """The frame rate `cores` fully busy cores would reach at this run's stage times
        (read, face, models, draw: the work a frame costs), or None before any frame."""
        work_ms = sum(self.stage_ms.get(k, 0.0) for k in ("read", "face", "models", "draw"))
        return cores * 1000.0 / work_ms if work_ms > 0 else None


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


def run_stream(
    source: FrameSource,
    model_set: ModelSet,
    settings: StreamSettings | None = None,
    *,
    detector: Detector | None = None,
    on_result: Callable[[FrameResult], None] | None = None,
    show: Callable[[np.ndarray], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    open_lane: OpenLane | None = None,
) -> StreamStats:
    """Run the models on every frame of `source` until it ends, `max_frames`, quit or Ctrl-C.

    `settings` (default: `StreamSettings()`) says how each frame is handled; `detector`
    finds the face for crop "face" (None: the tracker's default). With `settings.lanes`
    > 1, `open_lane()` gives each further lane its own model set and detector (closed
    here at the end). `show(bgr) -> quit?` displays the annotated frame; `on_result` gets
    each FrameResult, in frame order. A live source that stops delivering frames is
    reopened with backoff (`sleep` waits), then SourceError. Ctrl-C ends the loop cleanly
    (stats.ended == "interrupted"); the recording is released in every case.
    """
    settings = settings if settings is not None else StreamSettings()
    stats = StreamStats(record=settings.record)
    reader = FrameReader(source, settings, sleep)
    thresholds = [e.threshold for e in model_set.entries]
    present = Presenter(settings, thresholds, show, getattr(source, "fps", None))
    smoother = Smoother(settings.smooth)
    lanes, extra = [Lane(FaceStage(settings, detector), model_set)], []
    stage: collections.Counter[str] = collections.Counter()
    emitted: collections.deque[float] = collections.deque(maxlen=FPS_WINDOW)
    start = time.perf_counter()
    frames = None
    try:
        for _ in range(settings.lanes - 1):
            if open_lane is None:
                raise HemifaceError("more than one lane needs open_lane")
            lane_set, lane_detector = open_lane()
            extra.append(lane_set)
            lanes.append(Lane(FaceStage(settings, lane_detector), lane_set))
        reader.open()
        frames = processed_frames(reader, lanes, settings.overlap, settings.max_frames)
        stats.ended = "end of video"
        for item in frames:
            raw, region = item.raw, item.face.region
            if raw is None:
                stats.no_face += 1
                smoother.reset()
                prediction = None
            else:
                prediction = model_set.combine(smoother.update(raw))
                stats.predicted += 1
            emitted.append(time.perf_counter())
            fps = (len(emitted) - 1) / (emitted[-1] - emitted[0]) if len(emitted) > 1 else 0.0
            drawn = time.perf_counter()
            quit_now = present(item.frame.rgb, prediction, item.face, fps)
            times = _stage_times(item, time.perf_counter() - drawn)
            stage.update(times)
            stats.frames += 1
            if on_result is not None:
                on_result(_result(item, raw, prediction, fps, start, times, region is None))
            if quit_now:
                stats.ended = "quit"
                break
            if settings.max_frames is not None and stats.frames >= settings.max_frames:
                stats.ended = "max frames"
    except KeyboardInterrupt:
        stats.ended = "interrupted"
    finally:
        if frames is not None:
            frames.close()  # the lanes' threads finish their frame and stop
        for lane_set in extra:
            lane_set.close()
        present.release()
        reader.close()
        stats.reconnects = reader.reconnects
        stats.seconds = time.perf_counter() - start
        if stats.frames:
            stats.stage_ms = {k: round(v / stats.frames * 1000, 3) for k, v in stage.items()}
    present.check()
    return stats


def _stage_times(item: Processed, draw_s: float) -> dict[str, float]:
    """Seconds of each stage of one frame (with overlap, also the wait for its face step)."""
    own = {"read": item.frame.read_s, "face": item.face.seconds, "models": item.models_s}
    return {**own, "draw": draw_s, **item.stage_s}


def _result(
    item: Processed,
    raw: list[float] | None,
    prediction: SetPrediction | None,
    fps: float,
    start: float,
    times: dict[str, float],
    no_face: bool,
) -> FrameResult:
    return FrameResult(
        frame=item.frame.index,
        time=item.done_at - start,
        box=item.face.box,
        detected=item.face.detected,
        raw=None if no_face else raw,
        prediction=prediction,
        fps=fps,
        rotation=item.face.rotation,
        stage_ms={k: round(v * 1000, 3) for k, v in times.items()},
    )
