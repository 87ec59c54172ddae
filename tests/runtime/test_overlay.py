from __future__ import annotations

import numpy as np

from hemiface.runtime.face import FaceBox
from hemiface.runtime.modelset import ModelPrediction, SetPrediction
from hemiface.runtime.overlay import draw_figure, draw_overlay


def prediction(disagree: bool = False) -> SetPrediction:
    models = [
        ModelPrediction("mobilenetv2_base_model", "Base", 0.33, "Left", False),
        ModelPrediction("cnn_stroke_model", "CNN", 0.7 if disagree else 0.45, "Right", True),
    ]
    return SetPrediction(models, "int8", 0.39, "Left", 1, disagree, False)


def test_figure_is_rgb_with_a_title_band() -> None:
    red = np.zeros((100, 160, 3), np.uint8)
    red[..., 0] = 255
    figure = draw_figure(red, prediction())
    assert figure.shape[1] >= 160 and figure.shape[0] > 100 + 2 * 24
    assert (figure[0, 0] == 255).all()  # white band
    centre = figure[figure.shape[0] - 26 - 50, figure.shape[1] // 2]
    assert centre.tolist() == [255, 0, 0]  # still red in RGB order


def test_overlay_is_bgr_and_mirror_flips_only_the_picture() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, :320, 0] = 200  # the image's left half is red (RGB)
    box = FaceBox(400, 200, 100, 100)
    plain = draw_overlay(frame, prediction(True), box, fps=30.0)
    mirrored = draw_overlay(frame, prediction(True), box, fps=30.0, mirror=True)
    assert plain.shape == frame.shape
    assert plain[300, 10].tolist() == [0, 0, 200]  # BGR: red lands in channel 2
    assert mirrored[300, 630].tolist() == [0, 0, 200]  # the picture is flipped
    # the face box is drawn where the face is in each picture (green or amber outline)
    assert plain[250, 400].tolist() != [0, 0, 0]
    assert mirrored[250, 639 - 400].tolist() != [0, 0, 0]
    # text (the panel) stays top-left in both, readable: the panel darkened the same area
    assert (plain[5:60, 5:300] != 0).any() and (mirrored[5:60, 5:300] != 0).any()
    none = draw_overlay(frame, None, None, status="no face")
    assert none.shape == frame.shape
