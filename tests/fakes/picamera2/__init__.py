"""A stand-in for Picamera2 that holds hemiface to the real library's API and behaviour.

Put on the path by the `fake_picamera2` fixture (tests/runtime/test_picamera.py), or by
PYTHONPATH=tests/fakes for a subprocess. What it follows of the real Picamera2:
- `Picamera2(camera_num=0)` acquires the camera: a second instance while one is open
  fails ("Device or resource busy"), so a source that forgets close() cannot reopen;
- `create_video_configuration(main={"size": (w, h), "format": ...}, buffer_count=6, ...)`
  returns the configuration (a dict here) and changes nothing; `configure(config)` only
  while stopped; `start()` only once configured; `capture_array("main")` only while
  started, one frame each camera period;
- byte order: "RGB888" arrives as B, G, R in memory, "BGR888" as R, G, B (the Picamera2
  manual: the names give the packed word, as libcamera's do, not the memory order);
- `stop()` on a stopped camera and `close()` on a closed one do nothing.
The scene is an RGB picture (`SCENE`); `FAIL_AFTER` makes the open camera fail (raise, as
a loose ribbon cable makes capture_array raise) after that many captures in the process;
it fails until closed, and a camera opened after it works.
Every call is logged to `LOG`, and to the file named by FAKE_PICAMERA2_LOG if set.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from typing import Any

import numpy as np

FRAME_PERIOD_S = 1 / 60
SCENE: np.ndarray | None = None  # RGB uint8; None: grey with a red patch (RED_PATCH)
RED_PATCH = (slice(0.6, 0.9), slice(0.6, 0.9))  # share of height, width: bottom right
FAIL_AFTER: int | None = None  # captures (in the process) before the open camera fails, once
LOG: list[tuple[Any, ...]] = []
_lock = threading.Lock()
_ids = itertools.count(1)
_captures = itertools.count(1)
_held_by: int | None = None  # the instance that holds the camera


def default_scene(width: int, height: int) -> np.ndarray:
    scene = np.full((height, width, 3), 110, np.uint8)
    rows, cols = RED_PATCH
    scene[int(rows.start * height) : int(rows.stop * height),
          int(cols.start * width) : int(cols.stop * width)] = (255, 0, 0)  # fmt: skip
    return scene


def reset() -> None:
    global SCENE, FAIL_AFTER, _held_by, _captures
    SCENE, FAIL_AFTER, _held_by, _captures = None, None, None, itertools.count(1)
    LOG.clear()


def _log(*entry: Any) -> None:
    LOG.append(entry)
    path = os.environ.get("FAKE_PICAMERA2_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(" ".join(map(str, entry)) + "\n")


class Picamera2:
    def __init__(self, camera_num: int = 0) -> None:
        global _held_by
        self.id = next(_ids)
        with _lock:
            if _held_by is not None:
                _log(self.id, "init-busy")
                raise RuntimeError("Failed to acquire camera: Device or resource busy")
            _held_by = self.id
        self.camera_num = camera_num
        self.config: dict[str, Any] | None = None
        self.started = False
        self.closed = False
        self.captures = 0
        self.failed = False
        _log(self.id, "init", camera_num)

    def create_video_configuration(
        self,
        main: dict[str, Any] | None = None,
        lores: dict[str, Any] | None = None,
        raw: dict[str, Any] | None = None,
        transform: Any = None,
        colour_space: Any = None,
        buffer_count: int = 6,
        controls: dict[str, Any] | None = None,
        display: str | None = "main",
        encode: str | None = "main",
        queue: bool = True,
        sensor: dict[str, Any] | None = None,
        use_case: str = "video",
    ) -> dict[str, Any]:
        main = {"format": "XBGR8888", "size": (1280, 720), **(main or {})}
        _log(self.id, "create_video_configuration", main, buffer_count)
        return {
            "use_case": use_case,
            "main": main,
            "lores": lores,
            "raw": raw,
            "buffer_count": buffer_count,
            "queue": queue,
            "controls": controls or {},
        }

    def configure(self, camera_config: dict[str, Any]) -> None:
        if self.closed or self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        self.config = camera_config
        _log(self.id, "configure", camera_config["main"], camera_config["buffer_count"])

    def start(self, config: dict[str, Any] | None = None, show_preview: bool = False) -> None:
        if config is not None:
            self.configure(config)
        if self.config is None:
            raise RuntimeError("Camera has not been configured")
        self.started = True
        _log(self.id, "start")

    def capture_array(self, name: str = "main") -> np.ndarray:
        if not self.started or self.config is None:
            raise RuntimeError("Camera is not running")
        stream = self.config[name]
        global FAIL_AFTER
        if FAIL_AFTER is not None and next(_captures) > FAIL_AFTER:
            FAIL_AFTER = None  # once: a camera reopened after it works
            self.failed = True
        if self.failed:  # a failed camera keeps failing until it is closed
            _log(self.id, "capture_array-failed", name)
            raise RuntimeError("Camera frontend has timed out!")
        if not self.captures:
            _log(self.id, "capture_array", name)  # the first of each instance
        self.captures += 1
        time.sleep(FRAME_PERIOD_S)
        width, height = stream["size"]
        scene = SCENE if SCENE is not None else default_scene(width, height)
        if scene.shape[:2] != (height, width):
            raise AssertionError("the fake scene must be the configured size")
        if stream["format"] == "RGB888":  # B, G, R in memory
            return np.ascontiguousarray(scene[..., ::-1])
        if stream["format"] == "BGR888":  # R, G, B in memory
            return scene.copy()
        raise NotImplementedError(f"fake picamera2: format {stream['format']}")

    def stop(self) -> None:
        if self.started:
            self.started = False
        _log(self.id, "stop")

    def close(self) -> None:
        global _held_by
        if self.started:
            self.stop()
        if not self.closed:
            self.closed = True
            with _lock:
                if _held_by == self.id:
                    _held_by = None
        _log(self.id, "close")
