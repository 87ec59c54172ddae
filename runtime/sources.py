"""Frame sources for the live loop: a video file, an OpenCV camera, a Raspberry Pi camera.

Every source hands out RGB uint8 frames, unmirrored, as the models expect.

- `VideoFileSource` returns EVERY frame of the file, in order (a decoder thread reads a
  few frames ahead, so decoding overlaps inference); `read()` returns None at the end.
- `CameraSource` / `PicameraSource` run a reader thread that keeps only the latest frame:
  a camera buffers several frames (V4L2 ~4), and processing stale ones would add lag.
  `read()` returns None when no new frame arrives within `read_timeout` seconds; the
  pipeline then reopens the source with backoff.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from hemiface.core.quiet import quiet_fds
from hemiface.runtime.errors import HemifaceError

PICAMERA_HINT = "--picamera needs Picamera2 (Raspberry Pi OS: sudo apt install python3-picamera2)"
PREFETCH_FRAMES = 4
READ_TIMEOUT_S = 2.0
# The reader thread takes every frame as it completes: fewer buffers than Picamera2's video
# default (6) keep latency and memory down (each 640x480 RGB888 buffer is 0.9 MB).
PICAMERA_BUFFERS = 4
_END = object()


@contextmanager
def opencv_silent() -> Iterator[None]:
    """OpenCV's own log silenced for a moment (its `cv2.utils.logging`; builds without
    it, such as Debian's OpenCV 4.6 on 32-bit Raspberry Pi OS, are left as they are)."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(level)


class SourceError(HemifaceError):
    """A camera or video cannot be opened, or stopped delivering frames."""


class FrameSource(Protocol):
    name: str
    live: bool  # True for cameras: a missing frame is a fault, not the end

    def open(self) -> None: ...

    def read(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


def check_video_path(path: Path) -> None:
    """SourceError in one line unless `path` is a regular file that can be opened."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise SourceError(f"{path}: no such video file") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot read the video ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise SourceError(f"{path}: is a folder; --video reads one video file")
    if not stat.S_ISREG(info.st_mode):
        raise SourceError(f"{path}: not a regular file (a device or a pipe?)")


class VideoFileSource:
    """Every frame of a video file, in order, decoded one step ahead on a thread."""

    live = False

    def __init__(self, path: Path, prefetch: int = PREFETCH_FRAMES) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self.prefetch = prefetch
        self.fps: float | None = None
        self._queue: queue.Queue[Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        check_video_path(self.path)
        # FFmpeg prints its complaints about a damaged file to stderr itself; the one-line
        # SourceError below says what went wrong.
        with opencv_silent(), quiet_fds(2):
            capture = cv2.VideoCapture(str(self.path))
            ok, first = capture.read() if capture.isOpened() else (False, None)
        if not ok:
            capture.release()
            raise SourceError(f"{self.path}: OpenCV cannot read video frames from this file")
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else None
        self._stop.clear()
        self._queue = queue.Queue(maxsize=self.prefetch)
        self._thread = threading.Thread(
            target=self._decode, args=(capture, first), name="hemiface-video", daemon=True
        )
        self._thread.start()

    def _decode(self, capture: cv2.VideoCapture, frame: np.ndarray) -> None:
        assert self._queue is not None
        try:
            ok = True
            while ok and not self._stop.is_set():
                self._put(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                ok, frame = capture.read()
        finally:
            capture.release()
            self._put(_END)

    def _put(self, item: Any) -> None:
        assert self._queue is not None
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read(self) -> np.ndarray | None:
        if self._queue is None:
            raise SourceError(f"{self.name}: read before open")
        item = self._queue.get()
        if item is _END:
            self._queue.put(_END)  # later reads see the end too
            return None
        frame: np.ndarray = item
        return frame

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self._queue = None


class LatestFrameSource:
    """A live source: a reader thread grabs frames and keeps only the newest one.

    `opener()` returns (grab, release): `grab()` gives an RGB frame or None on failure.
    """

    live = True

    def __init__(
        self,
        name: str,
        opener: Callable[[], tuple[Callable[[], np.ndarray | None], Callable[[], None]]],
        read_timeout: float = READ_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.fps: float | None = None
        self.read_timeout = read_timeout
        self._opener = opener
        self._release: Callable[[], None] | None = None
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._taken = 0
        self._failed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        grab, self._release = self._opener()
        self._stop.clear()
        self._failed = False
        self._frame, self._seq, self._taken = None, 0, 0
        self._thread = threading.Thread(
            target=self._grab_loop, args=(grab,), name="hemiface-camera", daemon=True
        )
        self._thread.start()

    def _grab_loop(self, grab: Callable[[], np.ndarray | None]) -> None:
        while not self._stop.is_set():
            try:
                frame = grab()
            except Exception:  # noqa: BLE001 - a driver error is a failed read, reported by read()
                frame = None
            with self._cond:
                if frame is None:
                    self._failed = True
                    self._cond.notify_all()
                    return
                self._frame, self._seq = frame, self._seq + 1
                self._cond.notify_all()

    def read(self) -> np.ndarray | None:
        """The newest frame not handed out yet; None when the camera stopped or timed out."""
        with self._cond:
            ready = self._cond.wait_for(
                lambda: self._seq > self._taken or self._failed, timeout=self.read_timeout
            )
            if not ready or self._seq == self._taken:
                return None
            self._taken = self._seq
            return self._frame

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._release is not None:
            self._release()
            self._release = None


def CameraSource(  # noqa: N802 - reads as a class at call sites
    index: int = 0, width: int = 640, height: int = 480, read_timeout: float = READ_TIMEOUT_S
) -> LatestFrameSource:
    """A cv2.VideoCapture camera (USB webcam, V4L2 device number `index`)."""

    def opener() -> tuple[Callable[[], np.ndarray | None], Callable[[], None]]:
        # A missing camera makes OpenCV log a screenful per backend it tries; the one-line
        # SourceError below says it all.
        with opencv_silent():
            capture = cv2.VideoCapture(index)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"camera {index}: cannot open it (is it connected and free?)")
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)

        def grab() -> np.ndarray | None:
            ok, frame = capture.read()
            return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if ok else None

        return grab, capture.release

    return LatestFrameSource(f"camera {index}", opener, read_timeout)


def PicameraSource(  # noqa: N802 - reads as a class at call sites
    width: int = 640, height: int = 480, read_timeout: float = READ_TIMEOUT_S
) -> LatestFrameSource:
    """The Raspberry Pi CSI camera through Picamera2 (libcamera).

    Asks for a video configuration whose main stream is `width`x`height` "RGB888" with
    PICAMERA_BUFFERS buffers. Picamera2 names formats as libcamera does, by the packed
    word: "RGB888" arrives as B, G, R in memory (the Picamera2 manual's table of formats),
    which is OpenCV's BGR, so it is swapped to RGB here. The camera is stopped and closed
    on every way out: a failed start, a failed read (then reopened, as a webcam is), the
    end of the loop. Without Picamera2 this fails at once: reopening cannot install it.
    """
    if importlib.util.find_spec("picamera2") is None:
        raise SourceError(PICAMERA_HINT)

    def opener() -> tuple[Callable[[], np.ndarray | None], Callable[[], None]]:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise SourceError(PICAMERA_HINT) from None
        try:
            camera = Picamera2()
        except Exception as exc:  # noqa: BLE001 - no camera is IndexError, a busy one RuntimeError
            raise SourceError(f"Pi camera: cannot open it ({exc})") from None
        try:
            config = camera.create_video_configuration(
                main={"size": (width, height), "format": "RGB888"},
                buffer_count=PICAMERA_BUFFERS,
            )
            camera.configure(config)
            camera.start()
        except Exception as exc:  # noqa: BLE001 - libcamera raises many kinds; one line
            _release_picamera(camera)
            raise SourceError(f"Pi camera: cannot start it ({exc})") from None

        def grab() -> np.ndarray | None:
            bgr = camera.capture_array("main")
            rgb: np.ndarray = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            return rgb

        return grab, lambda: _release_picamera(camera)

    return LatestFrameSource("Pi camera", opener, read_timeout)


def _release_picamera(camera: Any) -> None:
    """stop() then close(), close() even when stop() fails (a camera that failed may)."""
    try:
        camera.stop()
    except Exception:  # noqa: BLE001, S110 - nothing to do about it but close
        pass
    finally:
        camera.close()


MAX_CAMERA_INDEX = 9999


def choose_source(
    camera: int | None, video: Path | None, picamera: bool, size: tuple[int, int]
) -> FrameSource:
    """The one source `run` or `serve` names (exactly one of them), checked before the
    model set is opened; nothing is opened here."""
    if sum([camera is not None, video is not None, picamera]) != 1:
        raise SourceError("give exactly one of --camera N, --video FILE, --picamera")
    if camera is not None and not 0 <= camera <= MAX_CAMERA_INDEX:
        raise SourceError(
            f"--camera must be a camera index, 0 to {MAX_CAMERA_INDEX} (got {camera})"
        )
    width, height = size
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise SourceError(f"--width and --height must be 16 to 8192 pixels ({width}x{height})")
    if video is not None:
        check_video_path(video)
        return VideoFileSource(video)
    if picamera:
        return PicameraSource(width, height)
    return CameraSource(camera or 0, width, height)
