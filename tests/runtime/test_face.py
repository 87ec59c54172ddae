from __future__ import annotations

import numpy as np
import pytest

from hemiface.runtime.face import (
    FaceBox,
    FaceTracker,
    center_crop,
    crop_box,
    crop_face,
    detect_face,
)


def iou(a: FaceBox, b: FaceBox) -> float:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / (a.area + b.area - inter)


def test_real_photograph(astronaut: np.ndarray) -> None:
    box = detect_face(astronaut)
    assert box is not None
    # The astronaut's face: centred near (223, 115) in the 512x512 photo, ~100 px wide.
    assert abs(box.x + box.w / 2 - 223) < 25 and abs(box.y + box.h / 2 - 115) < 25
    assert 70 <= box.w <= 150
    crop = crop_face(astronaut, box, margin=0.25)
    assert crop.shape[0] == crop.shape[1] == round(max(box.w, box.h) * 1.5)
    assert np.shares_memory(crop, astronaut)


def test_no_face_is_none_not_an_error() -> None:
    assert detect_face(np.full((480, 640, 3), 127, np.uint8)) is None
    noise = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    assert detect_face(noise) is None


def test_synthetic_faces() -> None:
    faces = pytest.importorskip("hemiface.synth.faces")
    rng = np.random.default_rng(0)
    found = 0
    for _ in range(10):
        face = faces.render_face(rng, "Left", 0.5, size=320)
        box = detect_face(face.image)
        if box is not None:
            found += 1
            assert iou(box, FaceBox(*face.face_box)) > 0.3
    assert found >= 5


def test_crop_box_stays_square_and_inside() -> None:
    shape = (480, 640, 3)
    corner = crop_box(shape, FaceBox(600, 440, 60, 80), margin=0.25)
    assert corner.w == corner.h == 120
    assert corner.x + corner.w <= 640 and corner.y + corner.h <= 480
    huge = crop_box(shape, FaceBox(0, 0, 640, 480), margin=0.5)
    assert huge.w == huge.h == 480 and huge.y == 0
    image = np.zeros((300, 500, 3), np.uint8)
    assert center_crop(image).shape == (300, 300, 3)


def test_tracker_follows_between_detections(helpers, astronaut: np.ndarray) -> None:
    frame = helpers.face_frame(astronaut, "right")
    tracker = FaceTracker(every=4)
    first, detected = tracker.update(frame)
    assert first is not None and detected
    shifted = np.roll(frame, 12, axis=1)
    box, detected = tracker.update(shifted)
    assert not detected and box is not None
    assert abs((box.x - first.x) - 12) <= 3 and box.y == pytest.approx(first.y, abs=3)
    blank = np.zeros_like(frame)
    assert tracker.update(blank) == (None, False)  # lost: nothing matches
    assert tracker.update(frame)[1]  # lost track means the next frame detects again


def test_haar_cascade_found_in_the_system_folder_without_cv2_data(tmp_path, monkeypatch) -> None:
    """Debian's python3-opencv (the 32-bit Pi route) has no cv2.data; opencv-data has the file."""
    import cv2

    from hemiface.runtime import sysinfo

    bundled = sysinfo.haar_cascade_path()
    assert bundled is not None  # the wheel's own copy, first
    system = tmp_path / "haarcascades"
    system.mkdir()
    (system / sysinfo.HAAR_FACE_FILE).write_bytes(bundled.read_bytes())
    monkeypatch.delattr(cv2, "data")
    monkeypatch.setattr(sysinfo, "SYSTEM_HAAR_FOLDERS", (tmp_path / "missing", system))
    assert sysinfo.haar_cascade_path() == system / sysinfo.HAAR_FACE_FILE
    monkeypatch.setattr(sysinfo, "SYSTEM_HAAR_FOLDERS", (tmp_path / "missing",))
    assert sysinfo.haar_cascade_path() is None
