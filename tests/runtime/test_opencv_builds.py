"""OpenCV builds differ: Debian's OpenCV 4.6 (32-bit Raspberry Pi OS) has no
`cv2.utils.logging`; a video still opens and plays without it."""

from __future__ import annotations

import types
from pathlib import Path

import cv2
import numpy as np
import pytest


def _video(path: Path, frames: int = 5) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize("has_logging", [True, False])
def test_a_video_opens_with_or_without_opencvs_log_control(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, has_logging: bool
) -> None:
    from hemiface.runtime.sources import VideoFileSource, opencv_silent

    if not has_logging:
        monkeypatch.setattr(cv2, "utils", types.SimpleNamespace(), raising=False)
    else:
        before = cv2.utils.logging.getLogLevel()
        with opencv_silent():
            assert cv2.utils.logging.getLogLevel() == cv2.utils.logging.LOG_LEVEL_SILENT
        assert cv2.utils.logging.getLogLevel() == before
    source = VideoFileSource(_video(tmp_path / "v.mp4"))
    source.open()
    try:
        frames = 0
        while source.read() is not None:
            frames += 1
    finally:
        source.close()
    assert frames == 5
