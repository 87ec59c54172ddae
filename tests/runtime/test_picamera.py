"""The Pi camera path against a fake Picamera2 that follows the real API (tests/fakes).

What is checked: the configuration asked for, the colour order from the camera's bytes to
the models, the overlay and the served stream, stop/close on every way out (Ctrl-C,
SIGTERM, an error), and a camera that fails mid-run being reopened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from hemiface.runtime.pipeline import StreamSettings, run_stream
from hemiface.runtime.sources import PICAMERA_BUFFERS, PicameraSource

FAKES = Path(__file__).resolve().parent.parent / "fakes"
SIZE = (320, 240)
RED_PIXEL = (200, 230)  # (row, column) inside the fake's red patch at 320x240


@pytest.fixture
def fake_picamera2(monkeypatch):
    """The fake `picamera2` importable for this test, reset; the real one never used."""
    monkeypatch.syspath_prepend(str(FAKES))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    import picamera2

    assert Path(picamera2.__file__).is_relative_to(FAKES)
    picamera2.reset()
    yield picamera2
    picamera2.reset()
    sys.modules.pop("picamera2", None)


def calls(fake, name: str) -> list[tuple]:
    return [entry for entry in fake.LOG if entry[1] == name]


def assert_every_camera_released(fake) -> None:
    opened = {entry[0] for entry in calls(fake, "init")}
    assert opened, "no camera was opened"
    for camera in opened:
        names = [entry[1] for entry in fake.LOG if entry[0] == camera]
        assert names[-2:] == ["stop", "close"], (camera, names)


def test_the_configuration_asked_for_and_rgb_frames(fake_picamera2) -> None:
    source = PicameraSource(*SIZE)
    source.open()
    try:
        frame = source.read()
    finally:
        source.close()
    main = {"size": SIZE, "format": "RGB888"}
    assert calls(fake_picamera2, "create_video_configuration") == [
        (1, "create_video_configuration", main, PICAMERA_BUFFERS)
    ]
    assert calls(fake_picamera2, "configure") == [(1, "configure", main, PICAMERA_BUFFERS)]
    order = [entry[1] for entry in fake_picamera2.LOG]
    assert order == ["init", "create_video_configuration", "configure", "start",
                     "capture_array", "stop", "close"]  # fmt: skip
    assert calls(fake_picamera2, "capture_array")[0][2] == "main"
    # The camera's bytes were B, G, R; the source hands the models R, G, B.
    assert frame is not None and frame.shape == (SIZE[1], SIZE[0], 3)
    assert tuple(frame[RED_PIXEL]) == (255, 0, 0)


def test_a_red_patch_is_red_in_the_overlay_and_the_stream(fake_picamera2) -> None:
    from support import read_mjpeg_part

    from hemiface.runtime.serve.access import AccessPolicy
    from hemiface.runtime.serve.hub import LiveHub
    from hemiface.runtime.serve.server import ViewServer

    hub = LiveHub()
    server = ViewServer(("127.0.0.1", 0), hub, AccessPolicy("127.0.0.1"))
    server.start()
    hub.start()
    try:
        stats = run_stream(
            hub.tap(PicameraSource(*SIZE)), _NoModels(),
            StreamSettings(crop="center", max_frames=3), on_result=hub.on_result,
        )  # fmt: skip
        assert stats.frames == 3
        overlay = hub.latest_annotated()  # drawn as the loop's overlay is: BGR
        jpeg = read_mjpeg_part(f"http://127.0.0.1:{server.port}/stream.mjpg")
    finally:
        hub.close()
        server.stop()
    assert overlay is not None
    b, g, r = (int(v) for v in overlay[RED_PIXEL])
    assert (b, g, r) == (0, 0, 255)
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    b, g, r = (int(v) for v in decoded[RED_PIXEL])
    assert r > 200 and g < 50 and b < 50, (b, g, r)  # red, through JPEG
    assert_every_camera_released(fake_picamera2)


class _NoModels:
    """A model set with no models: this test is about pixels, not probabilities."""

    entries: list = []

    def probabilities(self, rgb: np.ndarray) -> list[float]:
        return []

    def combine(self, probs):
        return None


@pytest.mark.parametrize("way_out", [KeyboardInterrupt, RuntimeError])
def test_the_camera_is_stopped_and_closed_on_ctrl_c_and_on_an_error(
    fake_picamera2, way_out: type[BaseException]
) -> None:
    def on_result(result) -> None:
        if result.frame == 2:
            raise way_out("stop here")

    settings = StreamSettings(crop="center")
    if way_out is KeyboardInterrupt:
        stats = run_stream(PicameraSource(*SIZE), _NoModels(), settings, on_result=on_result)
        assert stats.ended == "interrupted" and stats.frames == 3
    else:
        with pytest.raises(RuntimeError, match="stop here"):
            run_stream(PicameraSource(*SIZE), _NoModels(), settings, on_result=on_result)
    assert_every_camera_released(fake_picamera2)


def test_a_camera_that_fails_mid_run_is_reopened(fake_picamera2) -> None:
    fake_picamera2.FAIL_AFTER = 4  # the first camera dies after four frames
    waits: list[float] = []
    stats = run_stream(
        PicameraSource(*SIZE, read_timeout=2.0),
        _NoModels(),
        StreamSettings(crop="center", max_frames=6),
        sleep=waits.append,
    )
    assert stats.ended == "max frames" and stats.frames == 6
    assert stats.reconnects >= 1 and waits[0] == 0.5
    # Each reopen found the camera free: the failed one had been stopped and closed.
    assert calls(fake_picamera2, "init-busy") == []
    assert len(calls(fake_picamera2, "init")) == 1 + stats.reconnects
    assert_every_camera_released(fake_picamera2)


def test_a_failed_start_releases_the_camera(fake_picamera2, monkeypatch) -> None:
    def refuse(self, config=None, show_preview=False):
        raise RuntimeError("Failed to start camera")

    monkeypatch.setattr(fake_picamera2.Picamera2, "start", refuse)
    source = PicameraSource(*SIZE)
    with pytest.raises(Exception, match="Pi camera: cannot start it"):
        source.open()
    assert [e[1] for e in fake_picamera2.LOG][-2:] == ["stop", "close"]


def test_serve_picamera_stops_and_closes_the_camera_on_sigterm(
    model_set_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "camera.log"
    path = os.pathsep.join([str(FAKES), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "FAKE_PICAMERA2_LOG": str(log)}
    process = subprocess.Popen(
        [sys.executable, "-m", "hemiface", "serve", "--models", str(model_set_dir), "--picamera",
         "--width", "320", "--height", "240", "--port", "0", "--crop", "center",
         "--concurrency", "sequential"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "capture_array" not in _text(log):
            assert process.poll() is None, process.communicate()[1]
            time.sleep(0.1)
        time.sleep(0.3)  # a few frames into the loop
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "interrupted by SIGTERM" in stderr and "Traceback" not in stderr
    lines = _text(log).splitlines()
    assert lines[-2:] == ["1 stop", "1 close"], lines


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""
