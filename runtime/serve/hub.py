"""The live loop's side of the server: it hands over frames and results and never waits.

The loop runs headless (`show=None`: it draws nothing), with the hub's `on_result` hook and
its source wrapped by `LiveHub.tap`, which keeps the last few frames the loop read. Each
result is paired with its frame and put in a one-result slot; the overlay is drawn off the
loop, only for what is sent: an encoder thread draws and JPEG-encodes the newest frame at
most `max_fps` times a second, and only while someone watches the stream (drawing every
frame on the loop's thread cost 3.4 ms of an 8 ms frame here). Each viewer's thread sends
the newest JPEG when it changes. A viewer that reads slowly, or not at all, misses frames
(its socket send times out and it is dropped); the loop, the encoder and the other viewers
never wait for it, and nothing queues up: the hub holds one frame and result and one JPEG,
whatever the viewers do.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.live import MAX_LANES
from hemiface.runtime.overlay import draw_overlay
from hemiface.runtime.pipeline import FrameResult
from hemiface.runtime.sources import FrameSource

STREAM_FPS = 15.0  # an MJPEG viewer needs no more; each encode costs a few ms of a core
JPEG_QUALITY = 80
MAX_VIEWERS = 4


@dataclass(frozen=True)
class StreamLimits:
    """How much the stream may cost: encodes a second, JPEG quality, viewers at once."""

    max_fps: float = STREAM_FPS
    jpeg_quality: int = JPEG_QUALITY
    max_viewers: int = MAX_VIEWERS

    def __post_init__(self) -> None:
        if not 0.5 <= self.max_fps <= 60:
            raise HemifaceError(f"--stream-fps must be 0.5 to 60 (got {self.max_fps})")
        if not 10 <= self.jpeg_quality <= 100:
            raise HemifaceError(f"--jpeg-quality must be 10 to 100 (got {self.jpeg_quality})")
        if not 1 <= self.max_viewers <= 32:
            raise HemifaceError(f"--max-viewers must be 1 to 32 (got {self.max_viewers})")


def encode_jpeg(bgr: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise HemifaceError("OpenCV could not encode a JPEG of the frame")
    return data.tobytes()


class TappedSource:
    """A frame source that remembers the last `keep` frames it handed out, by index.

    The loop numbers its results by the frames it read (FrameResult.frame counts the
    frames the source gave, from 0, across reopens); with `overlap` it reads one frame
    ahead, and with lanes one frame a lane, hence more than one kept.
    """

    def __init__(self, source: FrameSource, keep: int = MAX_LANES + 2) -> None:
        self.source = source
        self.name = source.name
        self.live = source.live
        self._kept: collections.deque[tuple[int, np.ndarray]] = collections.deque(maxlen=keep)
        self._count = 0
        self._lock = threading.Lock()

    @property
    def fps(self) -> float | None:
        fps: float | None = getattr(self.source, "fps", None)
        return fps

    def open(self) -> None:
        self.source.open()

    def read(self) -> np.ndarray | None:
        frame = self.source.read()
        if frame is not None:
            with self._lock:
                self._kept.append((self._count, frame))
                self._count += 1
        return frame

    def close(self) -> None:
        self.source.close()

    def frame(self, index: int) -> np.ndarray | None:
        with self._lock:
            for kept_index, frame in self._kept:
                if kept_index == index:
                    return frame
        return None


class LiveHub:
    """The newest frame and result, its JPEG, and the threads that wait for them."""

    def __init__(self, limits: StreamLimits | None = None, meta: dict[str, Any] | None = None):
        self.limits = limits if limits is not None else StreamLimits()
        self.meta: dict[str, Any] = dict(meta or {})  # model titles, thresholds, the notice
        self.thresholds: list[float] | None = None  # the ticks on the overlay's bars
        self._cond = threading.Condition()
        self._tap: TappedSource | None = None
        self._frame: tuple[np.ndarray, FrameResult | None] | None = None
        self._frame_seq = 0
        self._jpeg: bytes | None = None
        self._jpeg_seq = 0  # the frame_seq the JPEG was made from
        self._result: FrameResult | None = None
        self._result_seq = 0
        self._stream_viewers = 0
        self._closed = False
        self._encoder: threading.Thread | None = None
        self.jpegs_encoded = 0
        self.parts_sent = 0
        self.last_fps: float | None = None  # the loop's, from its latest result

    # The loop's side: constant time, never blocks on a viewer, draws nothing.
    def tap(self, source: FrameSource) -> TappedSource:
        """`source` wrapped so that each result can be paired with its frame."""
        self._tap = TappedSource(source)
        return self._tap

    def on_result(self, result: FrameResult) -> None:
        """The loop's `on_result` hook: keep the result and, from the tap, its frame."""
        rgb = self._tap.frame(result.frame) if self._tap is not None else None
        with self._cond:
            if rgb is not None:
                self._frame, self._frame_seq = (rgb, result), self._frame_seq + 1
            self._result, self._result_seq = result, self._result_seq + 1
            self.last_fps = result.fps or None
            self._cond.notify_all()

    def show_annotated(self, bgr: np.ndarray) -> bool:
        """A `show` hook for a caller that draws its own frames: keep the newest one."""
        with self._cond:
            self._frame, self._frame_seq = (bgr, None), self._frame_seq + 1
            self._cond.notify_all()
        return False

    def annotate(self, frame: tuple[np.ndarray, FrameResult | None]) -> np.ndarray:
        """The overlay the loop would have drawn for this frame (BGR), drawn here."""
        image, result = frame
        if result is None:  # drawn already (show_annotated)
            return image
        status = "no face" if result.raw is None else None
        return draw_overlay(
            image, result.prediction, result.box, fps=result.fps, status=status,
            thresholds=self.thresholds,
        )  # fmt: skip

    # The encoder.
    def start(self) -> None:
        self._encoder = threading.Thread(
            target=self._encode_loop, name="hemiface-jpeg", daemon=True
        )
        self._encoder.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._encoder is not None:
            self._encoder.join(timeout=5.0)
            self._encoder = None

    @property
    def closed(self) -> bool:
        return self._closed

    def _encode_loop(self) -> None:
        interval = 1.0 / self.limits.max_fps
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: (
                        self._closed
                        or (self._stream_viewers > 0 and self._frame_seq > self._jpeg_seq)
                    )
                )
                if self._closed:
                    return
                frame, seq = self._frame, self._frame_seq
            assert frame is not None
            started = time.monotonic()
            jpeg = encode_jpeg(self.annotate(frame), self.limits.jpeg_quality)
            with self._cond:
                self._jpeg, self._jpeg_seq = jpeg, seq
                self.jpegs_encoded += 1
                self._cond.notify_all()
            # The cap: wait out the rest of the interval (woken early only to close).
            rest = interval - (time.monotonic() - started)
            if rest > 0:
                with self._cond:
                    self._cond.wait_for(lambda: self._closed, timeout=rest)

    # The viewers' side.
    def add_stream_viewer(self) -> bool:
        """Count one more stream viewer; False when the limit is reached."""
        with self._cond:
            if self._stream_viewers >= self.limits.max_viewers:
                return False
            self._stream_viewers += 1
            self._cond.notify_all()
            return True

    def remove_stream_viewer(self) -> None:
        with self._cond:
            self._stream_viewers -= 1

    @property
    def stream_viewers(self) -> int:
        return self._stream_viewers

    def wait_jpeg(self, after: int, timeout: float) -> tuple[int, bytes] | None:
        """The newest JPEG once it is newer than frame `after`; None on timeout or close."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._jpeg_seq > after, timeout)
            if self._closed or self._jpeg_seq <= after or self._jpeg is None:
                return None
            return self._jpeg_seq, self._jpeg

    def sent_part(self) -> None:
        with self._cond:
            self.parts_sent += 1

    def wait_result(self, after: int, timeout: float) -> tuple[int, dict[str, Any]] | None:
        """The newest result (as JSON, with live stage times when the loop gives them)
        once it is newer than result `after`; None on timeout or close."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._result_seq > after, timeout)
            if self._closed or self._result_seq <= after or self._result is None:
                return None
            seq, result = self._result_seq, self._result
        payload = result.to_json()
        stages = getattr(result, "stage_ms", None)
        if stages:
            payload["stage_ms"] = dict(stages)
        return seq, payload

    def wait_frame(self, after: int, timeout: float) -> tuple[int, np.ndarray] | None:
        """The newest frame, annotated, once newer than `after` (for the recorder)."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._frame_seq > after, timeout)
            if self._closed or self._frame_seq <= after or self._frame is None:
                return None
            seq, frame = self._frame_seq, self._frame
        return seq, self.annotate(frame)

    def latest_annotated(self) -> np.ndarray | None:
        with self._cond:
            frame = self._frame
        return self.annotate(frame) if frame is not None else None

    def snapshot(self) -> bytes | None:
        """The newest frame as a JPEG (the stream's, if it is of that frame); None before one."""
        with self._cond:
            frame, seq, jpeg, jpeg_seq = self._frame, self._frame_seq, self._jpeg, self._jpeg_seq
        if frame is None:
            return None
        if jpeg is not None and jpeg_seq == seq:
            return jpeg
        return encode_jpeg(self.annotate(frame), self.limits.jpeg_quality)


def snapshot_name() -> str:
    """A file name for a download: hemiface-YYYYmmdd-HHMMSS.jpg."""
    return time.strftime("hemiface-%Y%m%d-%H%M%S.jpg")
