"""Recording from the browser: the annotated stream into the folder given at start.

The recorder is a viewer of the hub on its own thread: it writes each new annotated frame
the loop hands over (frames that arrive while it writes are skipped, as for any viewer),
so the loop never waits for the disk. The file is written under a hidden temporary name
and renamed when the recording stops, also when the server stops, so the folder only ever
shows whole recordings. Names are made here, never taken from a request.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.pipeline import open_writer
from hemiface.runtime.serve.hub import LiveHub

DEFAULT_FPS = 15.0
WAIT_S = 0.5


def check_record_folder(folder: Path) -> Path:
    """The folder recordings go to: it must exist and be writable; one line if not."""
    if not folder.is_dir():
        raise HemifaceError(f"{folder}: --record-dir must be an existing folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise HemifaceError(f"{folder}: --record-dir is not writable")
    return folder


class Recorder:
    """Start and stop one recording at a time into `folder`."""

    def __init__(self, hub: LiveHub, folder: Path, fps: float | None = None) -> None:
        self.hub = hub
        self.folder = folder
        self.fps = fps  # None: the loop's FPS when the recording starts
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._final: Path | None = None
        self._error: str | None = None
        self.frames = 0

    @property
    def current(self) -> str | None:
        """The name of the file being recorded, if any."""
        return self._final.name if self._final is not None else None

    @property
    def error(self) -> str | None:
        return self._error

    def start(self) -> str:
        """Begin a recording; its file name. Starting twice keeps the running one."""
        with self._lock:
            if self._final is not None:
                return self._final.name
            stamp = time.strftime("%Y%m%d-%H%M%S")
            final = self.folder / f"hemiface-{stamp}.mp4"
            n = 1
            while final.exists():
                n += 1
                final = self.folder / f"hemiface-{stamp}-{n}.mp4"
            partial = self.folder / f".{final.stem}.partial.mp4"
            fps = self.fps or min(max(self.hub.last_fps or DEFAULT_FPS, 1.0), 60.0)
            self._stop.clear()
            self._final, self._error, self.frames = final, None, 0
            self._thread = threading.Thread(
                target=self._write, args=(partial, final, fps), name="hemiface-rec", daemon=True
            )
            self._thread.start()
            return final.name

    def stop(self) -> Path | None:
        """End the recording; the finished file (None if none ran or nothing was written)."""
        with self._lock:
            thread, final = self._thread, self._final
            if thread is None or final is None:
                return None
            self._stop.set()
            thread.join(timeout=30.0)
            self._thread, self._final = None, None
            return final if final.exists() else None

    def _write(self, partial: Path, final: Path, fps: float) -> None:
        writer: cv2.VideoWriter | None = None
        size: tuple[int, int] | None = None
        seq = 0
        try:
            while not self._stop.is_set():
                got = self.hub.wait_frame(seq, WAIT_S)
                if got is None:
                    if self.hub.closed:
                        break
                    continue
                seq, frame = got
                if writer is None:
                    size = (frame.shape[1], frame.shape[0])
                    writer = open_writer(partial, size, fps)
                writer.write(_fit(frame, size))
                self.frames += 1
        except HemifaceError as exc:
            self._error = str(exc)
        finally:
            if writer is not None:
                writer.release()
                os.replace(partial, final)  # readers see no file or a whole one


def _fit(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """The frame at the recording's size (a camera reopened at another size is scaled)."""
    if size is None or (frame.shape[1], frame.shape[0]) == size:
        return frame
    resized: np.ndarray = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return resized
