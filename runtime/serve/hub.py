"""The live loop's side of the server: it hands over frames and results and never waits.

`LiveHub.show(bgr)` is the loop's `show` hook: it puts the newest annotated frame in a
one-frame slot and returns at once. An encoder thread JPEG-encodes the newest frame at
most `max_fps` times a second, and only while someone watches the stream; each viewer's
thread sends the newest JPEG when it changes. A viewer that reads slowly, or not at all,
misses frames (its socket send times out and it is dropped); the loop, the encoder and
the other viewers never wait for it, and nothing queues up: the hub holds one frame, one
JPEG and one result, whatever the viewers do.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.pipeline import FrameResult

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


class LiveHub:
    """The newest frame, JPEG and result, and the threads that wait for them."""

    def __init__(self, limits: StreamLimits | None = None, meta: dict[str, Any] | None = None):
        self.limits = limits if limits is not None else StreamLimits()
        self.meta: dict[str, Any] = dict(meta or {})  # model titles, thresholds, the notice
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._frame_seq = 0
        self._jpeg: bytes | None = None
        self._jpeg_seq = 0  # the frame_seq the JPEG was made from
        self._result: dict[str, Any] | None = None
        self._result_seq = 0
        self._stream_viewers = 0
        self._closed = False
        self._encoder: threading.Thread | None = None
        self.jpegs_encoded = 0
        self.parts_sent = 0
        self.last_fps: float | None = None  # the loop's, from its latest result

    # The loop's side: constant time, never blocks on a viewer.
    def show(self, bgr: np.ndarray) -> bool:
        """The loop's `show` hook: keep the frame (the loop draws a new one each time)."""
        with self._cond:
            self._frame, self._frame_seq = bgr, self._frame_seq + 1
            self._cond.notify_all()
        return False  # the loop is stopped by the command (signals, end of video), not here

    def on_result(self, result: FrameResult) -> None:
        payload = result.to_json()
        stages = getattr(result, "stage_ms", None)  # live stage times, when the loop has them
        if stages:
            payload["stage_ms"] = dict(stages)
        with self._cond:
            self._result, self._result_seq = payload, self._result_seq + 1
            self.last_fps = result.fps or None
            self._cond.notify_all()

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
            jpeg = encode_jpeg(frame, self.limits.jpeg_quality)
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
        """The newest result once it is newer than result `after`; None on timeout or close."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._result_seq > after, timeout)
            if self._closed or self._result_seq <= after or self._result is None:
                return None
            return self._result_seq, self._result

    def wait_frame(self, after: int, timeout: float) -> tuple[int, np.ndarray] | None:
        """The newest annotated frame once newer than `after` (for the recorder)."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._frame_seq > after, timeout)
            if self._closed or self._frame_seq <= after or self._frame is None:
                return None
            return self._frame_seq, self._frame

    def snapshot(self) -> bytes | None:
        """The newest frame as a JPEG (the stream's, if it is of that frame); None before one."""
        with self._cond:
            frame, seq, jpeg, jpeg_seq = self._frame, self._frame_seq, self._jpeg, self._jpeg_seq
        if frame is None:
            return None
        if jpeg is not None and jpeg_seq == seq:
            return jpeg
        return encode_jpeg(frame, self.limits.jpeg_quality)


def snapshot_name() -> str:
    """A file name for a download: hemiface-YYYYmmdd-HHMMSS.jpg."""
    return time.strftime("hemiface-%Y%m%d-%H%M%S.jpg")
