from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from hemiface.runtime.modelset import load_model_set
from hemiface.runtime.pipeline import Smoother, StreamSettings, run_stream
from hemiface.runtime.sources import (
    LatestFrameSource,
    PicameraSource,
    SourceError,
    VideoFileSource,
)

N_FRAMES = 12


@pytest.fixture(scope="module")
def face_video(tmp_path_factory, helpers, astronaut) -> Path:
    folder = tmp_path_factory.mktemp("video")
    frames = [helpers.face_frame(astronaut, "right") for _ in range(N_FRAMES)]
    return helpers.write_video(folder / "face.mp4", frames)


@pytest.fixture(scope="module")
def mirrored_video(tmp_path_factory, helpers, astronaut) -> Path:
    folder = tmp_path_factory.mktemp("video")
    frames = [helpers.face_frame(astronaut, "right")[:, ::-1] for _ in range(N_FRAMES)]
    return helpers.write_video(folder / "mirrored.mp4", frames)


@pytest.fixture(scope="module")
def model_set(model_set_dir: Path):
    return load_model_set(model_set_dir)


def collect(source, model_set, show=None, sleep=time.sleep, **settings):
    results = []
    stats = run_stream(
        source,
        model_set,
        StreamSettings(**settings),
        on_result=results.append,
        show=show,
        sleep=sleep,
    )
    return stats, results


def test_video_file_every_frame_in_order(tmp_path: Path, helpers) -> None:
    frames = [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(20)]
    path = tmp_path / "ramp.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for frame in frames:
        writer.write(frame)
    writer.release()
    source = VideoFileSource(path, prefetch=2)
    source.open()
    seen = []
    while (frame := source.read()) is not None:
        time.sleep(0.005)  # a slow consumer must still get every frame
        seen.append(int(round(frame.mean() / 10)))
    source.close()
    assert seen == list(range(20))


def test_missing_or_bad_video_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such video file"):
        VideoFileSource(tmp_path / "nope.mp4").open()
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    with pytest.raises(SourceError, match="cannot read video frames"):
        VideoFileSource(fake).open()


def test_stream_on_a_real_video_with_recording(face_video: Path, model_set, tmp_path: Path) -> None:
    record = tmp_path / "out.mp4"
    stats, results = collect(VideoFileSource(face_video), model_set, record=record)
    assert stats.ended == "end of video"
    assert stats.frames == stats.predicted == N_FRAMES and stats.no_face == 0
    assert [r.frame for r in results] == list(range(N_FRAMES))
    assert all(r.box is not None and r.prediction.label == "Right" for r in results)
    assert results[0].to_json()["ensemble"]["label"] == "Right"
    capture = cv2.VideoCapture(str(record))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == N_FRAMES
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (480, 640, 3)


def test_mirrored_source_swaps_side_but_mirror_preview_does_not(
    face_video: Path, mirrored_video: Path, model_set
) -> None:
    _, plain = collect(VideoFileSource(face_video), model_set, max_frames=4)
    _, flipped = collect(VideoFileSource(mirrored_video), model_set, max_frames=4)
    previews: list[np.ndarray] = []

    def show(bgr: np.ndarray) -> bool:
        previews.append(bgr)
        return False

    _, preview_mirrored = collect(
        VideoFileSource(face_video), model_set, max_frames=4, mirror=True, show=show
    )
    assert {r.prediction.label for r in plain} == {"Right"}
    assert {r.prediction.label for r in flipped} == {"Left"}
    for a, b in zip(plain, preview_mirrored, strict=True):
        assert a.raw == b.raw and a.box == b.box
    # the preview itself is mirrored: the face box (left edge x in the frame) moves
    box = plain[0].box
    mirrored_x = 640 - box.x - box.w
    assert previews[0][box.y + box.h // 2, mirrored_x].tolist() != previews[0][0, 0].tolist()


def test_crop_modes_and_no_face(model_set, tmp_path: Path, helpers) -> None:
    blank = helpers.write_video(tmp_path / "blank.mp4", [np.full((120, 160, 3), 90, np.uint8)] * 3)
    stats, results = collect(VideoFileSource(blank), model_set)
    assert stats.no_face == 3 and stats.predicted == 0
    assert results[0].to_json()["models"] is None and results[0].prediction is None
    stats, results = collect(VideoFileSource(blank), model_set, crop="center")
    assert stats.predicted == 3 and results[0].box is None


def test_smoothing_is_an_ema() -> None:
    smoother = Smoother(0.5)
    assert smoother.update([1.0]) == [1.0]
    assert smoother.update([0.0]) == [0.5]
    assert smoother.update([0.0]) == [0.25]
    smoother.reset()
    assert smoother.update([0.2]) == [0.2]
    assert Smoother(0.0).update([0.3]) == [0.3]


def _counting_opener(
    frame: np.ndarray, good_reads: list[int], opens: list[int], period: float = 0.002
):
    """A fake camera: open k delivers good_reads[k] frames, then fails (or never opens)."""

    def opener():
        k = len(opens)
        opens.append(k)
        budget = good_reads[k] if k < len(good_reads) else 0
        if budget < 0:
            raise SourceError("fake camera: cannot open it")
        left = [budget]

        def grab():
            if left[0] <= 0:
                return None
            left[0] -= 1
            time.sleep(period)  # slower than the loop: no frame is skipped
            return frame

        return grab, lambda: None

    return opener


def test_camera_that_recovers_is_reopened(model_set, helpers, astronaut) -> None:
    frame = helpers.face_frame(astronaut, "right")
    opens: list[int] = []
    # 3 frames, a failed reopen, then frames again: the loop keeps going.
    source = LatestFrameSource(
        "fake camera", _counting_opener(frame, [3, -1, 50], opens, period=0.05), read_timeout=0.5
    )
    waits: list[float] = []
    stats, results = collect(source, model_set, max_frames=6, sleep=waits.append, crop="center")
    assert stats.ended == "max frames" and stats.frames == 6
    assert len(opens) == 3 and stats.reconnects == 2
    assert waits == [0.5, 1.0]  # backoff doubles while failures run on


def test_camera_that_dies_gives_up_after_bounded_reconnects(model_set, helpers, astronaut):
    frame = helpers.face_frame(astronaut, "right")
    opens: list[int] = []
    source = LatestFrameSource("fake camera", _counting_opener(frame, [2], opens), 0.5)
    waits: list[float] = []
    with pytest.raises(SourceError) as info:
        collect(source, model_set, max_reconnects=3, sleep=waits.append, crop="center")
    message = str(info.value)
    assert "gave up after 3 reconnect attempts" in message and "\n" not in message
    assert len(opens) == 4 and waits == [0.5, 1.0, 2.0]


def test_latest_frame_source_drops_stale_frames() -> None:
    """A camera faster than the loop: frames that arrive between two reads are dropped,
    the newest is handed out. The camera delivers a burst of frames, then holds the next
    one until the test has read, so what is read does not depend on timing."""
    burst = 4
    counter = [0]
    burst_done, go_on, closing = threading.Event(), threading.Event(), threading.Event()

    def opener():
        def grab():
            if counter[0] and counter[0] % burst == 0:  # a whole burst is stored by now
                burst_done.set()
                go_on.wait(timeout=30)
                go_on.clear()
            if closing.is_set():
                return None
            counter[0] += 1
            return np.full((4, 4, 3), counter[0], np.uint8)

        return grab, lambda: None

    source = LatestFrameSource("fast camera", opener, read_timeout=30)
    source.open()
    seen = []
    for _ in range(3):
        assert burst_done.wait(timeout=30)
        burst_done.clear()
        seen.append(int(source.read()[0, 0, 0]))
        if len(seen) == 3:
            closing.set()
        go_on.set()
    source.close()
    assert seen == [4, 8, 12]  # the newest of each burst; the three before it were dropped


def test_picamera_without_picamera2_is_one_line() -> None:
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(SourceError, match="Picamera2"):
            PicameraSource()  # at once: no reconnect loop for a missing package
    else:
        pytest.skip("Picamera2 is installed here")


def test_interrupt_leaves_a_playable_recording(face_video: Path, model_set, tmp_path) -> None:
    record = tmp_path / "cut.mp4"

    def interrupt_at_5(result) -> None:
        if result.frame == 4:
            raise KeyboardInterrupt

    threads_before = set(threading.enumerate())
    stats = run_stream(
        VideoFileSource(face_video),
        model_set,
        StreamSettings(record=record),
        on_result=interrupt_at_5,
    )
    left_running = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert left_running == []  # the decoder thread was stopped
    assert stats.ended == "interrupted" and stats.frames == 5
    capture = cv2.VideoCapture(str(record))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    assert count == 5


def test_quit_key_ends_the_loop(face_video: Path, model_set) -> None:
    shown = []

    def show(bgr: np.ndarray) -> bool:
        shown.append(bgr.shape)
        return len(shown) == 3  # "q" pressed on the third frame

    stats, results = collect(VideoFileSource(face_video), model_set, show=show)
    assert stats.ended == "quit" and stats.frames == 3 and len(results) == 3
    assert shown[0] == (480, 640, 3)


def test_stream_settings_are_checked_when_made() -> None:
    from hemiface.core.errors import HemifaceError
    from hemiface.runtime.pipeline import CROPS

    for bad, message in [
        (dict(crop="middle"), "--crop must be none, face or center"),
        (dict(every=0), "--every must be >= 1"),
        (dict(smooth=1.0), r"--smooth in \[0, 1\)"),
        (dict(max_frames=0), "--max-frames must be 1 or more"),
    ]:
        with pytest.raises(HemifaceError, match=message):
            StreamSettings(**bad)
    assert StreamSettings(crop="center", record="out.mp4").record == Path("out.mp4")
    assert CROPS == ("none", "face", "center")


def test_cli_choices_are_the_library_names() -> None:
    """The command line's Enums offer exactly the names the library accepts."""
    from hemiface.runtime import options as cli
    from hemiface.runtime.backends import BACKEND_NAMES
    from hemiface.runtime.detectors import ALIASES, DETECTORS
    from hemiface.runtime.face import DEFAULT_MARGIN
    from hemiface.runtime.live import CHOICES
    from hemiface.runtime.manifest import FORMATS
    from hemiface.runtime.pipeline import CROPS

    def values(choices: type) -> tuple[str, ...]:
        return tuple(choice.value for choice in choices)

    assert values(cli.ModelFormat) == FORMATS
    assert values(cli.Backend) == BACKEND_NAMES
    assert values(cli.DetectorChoice) == DETECTORS + tuple(ALIASES)
    assert values(cli.Crop) == CROPS
    assert values(cli.Concurrency) == CHOICES
    assert cli.DEFAULT_MARGIN == DEFAULT_MARGIN
