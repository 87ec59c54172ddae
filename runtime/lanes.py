"""Which thread runs which stage of the live loop: its threading policy, in one place.

- One lane, no overlap: read, face step and models one after another on the caller's
  thread.
- Overlap: the next frame is read and its face step runs on a helper thread while this
  frame's models run.
- Several lanes: that many frames in flight, each read frame handed to a free lane (a
  thread with its own detector and interpreters, since an interpreter must not be shared
  between threads), the results given back in frame order. A frame costs about the same
  time on one core in every mode; several lanes put every core to work on different
  frames, with no synchronisation inside a frame, which is how a two-core machine gets
  near twice one core's frame rate. Each lane detects on every frame (a tracker would
  see only every Nth frame).

The latest-frame policy holds in every mode: a frame is read only when a lane is free to
take it, and a camera source hands out only its newest frame, so no queue of old frames
builds up; at most one frame a lane is in flight. Drawing, recording and the callbacks
run on the caller's thread, between frames.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from hemiface.runtime.modelset import ModelSet
from hemiface.runtime.stream_stages import (
    FaceStage,
    FaceStep,
    Frame,
    FrameReader,
    Processed,
    classify,
)


@dataclass
class Lane:
    """The face step and the models of one frame at a time."""

    face: FaceStage
    model_set: ModelSet

    def process(self, frame: Frame) -> Processed:
        return classify(frame, self.face(frame.rgb), self.model_set)


def processed_frames(
    reader: FrameReader, lanes: list[Lane], overlap: bool, max_frames: int | None
) -> Generator[Processed, None, None]:
    """Every frame the reader gives (at most `max_frames`), processed, in order."""
    if len(lanes) > 1:
        return _side_by_side(reader, lanes, max_frames)
    if overlap:
        return _overlapped(reader, lanes[0], max_frames)
    return _one_by_one(reader, lanes[0], max_frames)


def _wanted(reader: FrameReader, max_frames: int | None) -> bool:
    return max_frames is None or reader.count < max_frames


def _one_by_one(
    reader: FrameReader, lane: Lane, max_frames: int | None
) -> Generator[Processed, None, None]:
    while _wanted(reader, max_frames):
        frame = reader.read()
        if frame is None:
            return
        yield lane.process(frame)


def _overlapped(
    reader: FrameReader, lane: Lane, max_frames: int | None
) -> Generator[Processed, None, None]:
    def read_and_find() -> tuple[Frame, FaceStep] | None:
        frame = reader.read() if _wanted(reader, max_frames) else None
        return None if frame is None else (frame, lane.face(frame.rgb))

    with ThreadPoolExecutor(1, thread_name_prefix="hemiface-face") as pool:
        ahead: Future[tuple[Frame, FaceStep] | None] = pool.submit(read_and_find)
        while True:
            waited = time.perf_counter()
            ready = ahead.result()
            waited = time.perf_counter() - waited
            if ready is None:
                return
            frame, face = ready
            ahead = pool.submit(read_and_find)
            processed = classify(frame, face, lane.model_set)
            processed.stage_s["face_wait"] = waited  # the face step that did not overlap
            yield processed


def _side_by_side(
    reader: FrameReader, lanes: list[Lane], max_frames: int | None
) -> Generator[Processed, None, None]:
    free = collections.deque(lanes)
    flying: collections.deque[tuple[Future[Processed], Lane]] = collections.deque()
    ended = False
    pool = ThreadPoolExecutor(len(lanes), thread_name_prefix="hemiface-lane")
    try:
        while True:
            while free and not ended and _wanted(reader, max_frames):
                frame = reader.read()
                if frame is None:
                    ended = True
                    break
                lane = free.popleft()
                flying.append((pool.submit(lane.process, frame), lane))
            if not flying:
                return
            future, lane = flying.popleft()
            processed = future.result()
            free.append(lane)
            yield processed
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
