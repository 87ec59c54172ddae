from __future__ import annotations

import numpy as np
import pytest

from hemiface.synth.faces import mirror, render_face

SIZE = 224


def face_axis_side(face) -> np.ndarray:
    """Signed position of every mask pixel along the face's own left-to-right axis,
    measured from the face midline (positive = towards the image's right)."""
    lm = face.landmarks
    left = np.array(lm["image_left_eye_inner"])
    right = np.array(lm["image_right_eye_inner"])
    axis = (right - left) / np.linalg.norm(right - left)
    mid = (left + right) / 2
    ys, xs = np.nonzero(face.mask)
    return (np.stack([xs, ys], 1) - mid) @ axis


def test_same_seed_same_face_and_different_seed_differs():
    a = render_face(np.random.default_rng(7), "Left", 0.5)
    b = render_face(np.random.default_rng(7), "Left", 0.5)
    c = render_face(np.random.default_rng(8), "Left", 0.5)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.mask, b.mask)
    assert a.landmarks == b.landmarks and a.face_box == b.face_box
    assert not np.array_equal(a.image, c.image)
    assert a.image.shape == (SIZE, SIZE, 3) and a.image.dtype == np.uint8
    assert a.mask.shape == (SIZE, SIZE) and a.mask.dtype == bool


@pytest.mark.parametrize("label,sign", [("Left", 1.0), ("Right", -1.0)])
def test_mask_lies_on_the_image_side_the_convention_says(label, sign):
    # Patient's left = image right in an unmirrored image: "Left" droop is at +x.
    for seed in range(12):
        face = render_face(np.random.default_rng(seed), label, 0.6)
        side = face_axis_side(face)
        assert side.size > 30, "a 0.6 droop must change pixels"
        assert np.mean(np.sign(side) == sign) > 0.97, (seed, np.mean(np.sign(side) == sign))


def test_upright_mask_lies_in_the_expected_image_half():
    face = render_face(np.random.default_rng(3), "Left", 0.8, roll=0.0, shift=(0.0, 0.0))
    ys, xs = np.nonzero(face.mask)
    assert np.mean(xs > SIZE / 2) > 0.97


def test_droop_moves_the_affected_landmarks():
    rng_args = dict(roll=0.0, corner_jitter=(0.0, 0.0), brow_jitter=(0.0, 0.0))
    face = render_face(np.random.default_rng(4), "Left", 1.0, **rng_args)
    lm = face.landmarks
    # Left = image right side droops: its mouth corner and brow sit lower (larger y).
    assert lm["image_right_mouth_corner"][1] > lm["image_left_mouth_corner"][1] + 5
    assert lm["image_right_brow_outer"][1] > lm["image_left_brow_outer"][1] + 2
    right_eye = lm["image_right_eye_bottom"][1] - lm["image_right_eye_top"][1]
    left_eye = lm["image_left_eye_bottom"][1] - lm["image_left_eye_top"][1]
    assert right_eye > left_eye * 1.3


def test_no_droop_no_mask_and_mask_grows_with_severity():
    sizes = [
        int(render_face(np.random.default_rng(5), "Right", s).mask.sum())
        for s in (0.0, 0.2, 0.5, 1.0)
    ]
    assert sizes[0] == 0
    assert 0 < sizes[1] < sizes[2] < sizes[3]


def test_label_does_not_change_anything_but_the_droop():
    # Confounders (pose, light, background, identity) are drawn before the label is used.
    left = render_face(np.random.default_rng(9), "Left", 0.5)
    right = render_face(np.random.default_rng(9), "Right", 0.5)
    assert left.params == right.params
    unchanged = ~(left.mask | right.mask)
    diff = np.abs(left.image.astype(int) - right.image.astype(int)).max(axis=2)
    # Away from both droop regions the images agree up to blur spill-over at the edges.
    assert np.mean(diff[unchanged] == 0) > 0.97


def test_mirror_gives_a_valid_face_of_the_other_label():
    face = render_face(np.random.default_rng(11), "Left", 0.7)
    flipped = mirror(face)
    assert flipped.label == "Right" and flipped.severity == face.severity
    assert np.array_equal(flipped.image, face.image[:, ::-1])
    assert np.array_equal(flipped.mask, face.mask[:, ::-1])
    x, y = face.landmarks["image_right_mouth_corner"]
    assert flipped.landmarks["image_left_mouth_corner"] == (SIZE - 1 - x, y)
    assert flipped.landmarks["nose_tip"][0] == SIZE - 1 - face.landmarks["nose_tip"][0]
    assert np.mean(face_axis_side(flipped) < 0) > 0.97
    fx, fy, fw, fh = flipped.face_box
    assert (SIZE - fx - fw, fy, fw, fh) == face.face_box
    again = mirror(flipped)
    assert again.label == "Left" and np.array_equal(again.image, face.image)
    for name, point in face.landmarks.items():
        assert again.landmarks[name] == pytest.approx(point, abs=1e-9)


def test_bad_arguments_are_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        render_face(rng, "left", 0.5)
    with pytest.raises(ValueError):
        render_face(rng, "Left", 1.5)
    with pytest.raises(TypeError):
        render_face(rng, "Left", 0.5, no_such_parameter=1)


def test_other_sizes_scale_the_face():
    face = render_face(np.random.default_rng(2), "Right", 0.6, size=96)
    assert face.image.shape == (96, 96, 3)
    assert np.mean(face_axis_side(face) < 0) > 0.9
