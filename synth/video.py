"""A short synthetic "camera" video with known labels, to stand in for a live camera.

One synthetic person is filmed twice: first with droop on one side, then (the mirrored
face, same identity and severity) on the other. The face drifts slowly across a 640x480
frame and every frame gets fresh sensor noise, so the runtime's face detection, tracking
and smoothing have real work to do. The per-frame ground truth is returned, so a run on
the video can be scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from hemiface.core.errors import HemifaceError
from hemiface.synth.faces import mirror, render_face

FRAME_SIZE = (640, 480)  # width, height: a common webcam mode
FACE_PIXELS = 300  # the face image is scaled to this square, about what a webcam at 60 cm sees


def _canvas(width: int, height: int) -> np.ndarray:
    """A calm vertical gradient: a wall behind the person."""
    ramp = np.linspace(150, 95, height, dtype=np.float32)[:, None, None]
    tint = np.array([1.0, 0.97, 0.92], np.float32)  # RGB: slightly warm
    return np.broadcast_to(ramp * tint, (height, width, 3)).astype(np.uint8)


def write_face_video(
    path: Path,
    seconds: float = 4.0,
    fps: float = 15.0,
    seed: int = 7,
    first_label: str = "Left",
    severity: float = 0.85,
    frame_size: tuple[int, int] = FRAME_SIZE,
    fourcc: str = "mp4v",
) -> list[str]:
    """Write the video and return the true label of every frame, in order."""
    width, height = frame_size
    rng = np.random.default_rng(seed)
    face = render_face(rng, first_label, severity, size=224, roll=0.0, noise=0.0)
    segments = [face, mirror(face)]  # same person, droop on the other side
    frames_total = max(2, int(round(seconds * fps)))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise HemifaceError(f"{path}: OpenCV cannot write a {fourcc} video here")
    background = _canvas(width, height)
    labels: list[str] = []
    try:
        for index in range(frames_total):
            segment = segments[0] if index < frames_total // 2 else segments[1]
            phase = 2 * np.pi * index / frames_total
            x = int((width - FACE_PIXELS) / 2 + 60 * np.sin(phase))
            y = int((height - FACE_PIXELS) / 2 + 20 * np.sin(2 * phase))
            frame = background.copy()
            face_img = cv2.resize(
                segment.image, (FACE_PIXELS, FACE_PIXELS), interpolation=cv2.INTER_LINEAR
            )
            frame[y : y + FACE_PIXELS, x : x + FACE_PIXELS] = face_img
            noise = rng.normal(0.0, 3.0, frame.shape).astype(np.float32)
            frame = np.clip(frame.astype(np.float32) + noise, 0, 255).astype(np.uint8)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            labels.append(segment.label)
    finally:
        writer.release()
    return labels


def label_accuracy(truth: Sequence[str], predicted: Sequence[str | None]) -> float | None:
    """Share of frames with a prediction whose label matches the truth (None: no predictions)."""
    pairs = [(t, p) for t, p in zip(truth, predicted, strict=False) if p is not None]
    if not pairs:
        return None
    return sum(t == p for t, p in pairs) / len(pairs)
