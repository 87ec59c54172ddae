"""Drawing with OpenCV only (no matplotlib): the live overlay and the `predict --figure`.

`draw_overlay` returns BGR (it feeds cv2.imshow and the VideoWriter); `draw_figure`
returns RGB, like every other image array in the runtime. The live overlay goes on a BGR
copy of the frame: the face box, one bar per model
(P(Right) from 0 to 1, a tick at the threshold), labels, "?" inside the uncertainty
band, the ensemble line, a "models disagree" mark, FPS, and the not-a-medical-device
line. With `mirror=True` the picture (and the box) is flipped for a selfie-style preview
but the text is not, and the labels still name the patient's side as the models saw it.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from hemiface.core.domain import NOTICE_SHORT as NOTICE
from hemiface.runtime.face import FaceBox
from hemiface.runtime.modelset import SetPrediction

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE, BLACK = (255, 255, 255), (0, 0, 0)
GREEN, AMBER, RED, GREY = (80, 200, 80), (0, 190, 255), (60, 60, 230), (160, 160, 160)  # BGR
LINE_H = 20
BAR_W = 110


def _text(img: np.ndarray, text: str, org: tuple[int, int], color: tuple[int, ...]) -> None:
    cv2.putText(img, text, org, FONT, 0.48, BLACK, 3, cv2.LINE_AA)
    cv2.putText(img, text, org, FONT, 0.48, color, 1, cv2.LINE_AA)


def _shade(img: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
    """Darken a rectangle so the text on it reads on any background."""
    x1, y1 = min(x1, img.shape[1]), min(y1, img.shape[0])
    if x1 > x0 and y1 > y0:
        roi = img[y0:y1, x0:x1]
        roi[:] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)


def draw_overlay(
    rgb: np.ndarray,
    prediction: SetPrediction | None,
    box: FaceBox | None,
    *,
    fps: float | None = None,
    mirror: bool = False,
    status: str | None = None,
    thresholds: Sequence[float] | None = None,
) -> np.ndarray:
    """The annotated frame, BGR uint8, ready for cv2.imshow or a VideoWriter."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if box is not None:
        color = GREEN if prediction is not None and not prediction.disagree else AMBER
        cv2.rectangle(bgr, (box.x, box.y), (box.x + box.w, box.y + box.h), color, 2)
    if mirror:
        bgr = cv2.flip(bgr, 1)
    height, width = bgr.shape[:2]
    n_lines = 1
    if prediction is not None:
        n_lines = len(prediction.models) + 1 + int(prediction.disagree)
    _shade(bgr, 0, 0, 320, 10 + LINE_H * (n_lines + 1))
    y = 8 + LINE_H - 4
    if prediction is None:
        _text(bgr, status or "no face", (8, y), AMBER)
        y += LINE_H
    else:
        cuts = list(thresholds or [0.5] * len(prediction.models))
        for model, cut in zip(prediction.models, cuts, strict=False):
            mark = " ?" if model.uncertain else ""
            _text(bgr, f"{model.title[:10]}", (8, y), WHITE)
            x_bar = 100
            cv2.rectangle(bgr, (x_bar, y - 10), (x_bar + BAR_W, y), GREY, 1)
            fill = int(round(BAR_W * min(max(model.p, 0.0), 1.0)))
            bar_color = AMBER if model.uncertain else GREEN
            cv2.rectangle(bgr, (x_bar, y - 9), (x_bar + fill, y - 1), bar_color, -1)
            tick = x_bar + int(round(BAR_W * cut))
            cv2.line(bgr, (tick, y - 13), (tick, y + 3), WHITE, 1)
            _text(bgr, f"{model.label} {model.p:.2f}{mark}", (x_bar + BAR_W + 8, y), WHITE)
            y += LINE_H
        n = len(prediction.models)
        line = f"Ensemble: {prediction.label} {prediction.mean_p:.2f} ({prediction.agree}/{n})"
        color = AMBER if prediction.uncertain else WHITE
        _text(bgr, line + (" ?" if prediction.uncertain else ""), (8, y), color)
        y += LINE_H
        if prediction.disagree:
            _text(bgr, "models disagree", (8, y), RED)
            y += LINE_H
    info = f"{fps:.1f} FPS" if fps is not None else ""
    if prediction is not None:
        info = f"{info}  {prediction.format}".strip()
    _text(bgr, info, (8, y), GREY)
    _shade(bgr, 0, height - 24, width, height)
    _text(bgr, f"{NOTICE}; sides are the patient's", (8, height - 8), WHITE)
    return bgr


def draw_figure(rgb: np.ndarray, prediction: SetPrediction, max_side: int = 448) -> np.ndarray:
    """What the notebook drew: the input under one title line a model, "Base: Left (0.33)".

    Returns an RGB image, like every image array in the runtime (white title band on top
    of the scaled input); write it with hemiface.runtime.images.write_image.
    """
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    lines = [f"{m.title}: {m.label} ({m.p:.2f})" for m in prediction.models]
    lines.append(
        f"Ensemble: {prediction.label} ({prediction.mean_p:.2f}), "
        f"{prediction.agree}/{len(prediction.models)} agree, {prediction.format}"
        + ("; models disagree" if prediction.disagree else "")
    )
    text_w = max(cv2.getTextSize(t, FONT, 0.55, 1)[0][0] for t in lines) + 20
    band = 10 + 24 * len(lines)
    canvas_w = max(image.shape[1], text_w)
    canvas = np.full((band + image.shape[0] + 26, canvas_w, 3), 255, np.uint8)
    for i, line in enumerate(lines):
        line_w = cv2.getTextSize(line, FONT, 0.55, 1)[0][0]
        x = (canvas_w - line_w) // 2
        cv2.putText(canvas, line, (x, 24 + 24 * i), FONT, 0.55, BLACK, 1, cv2.LINE_AA)
    x0 = (canvas_w - image.shape[1]) // 2
    canvas[band : band + image.shape[0], x0 : x0 + image.shape[1]] = image
    cv2.putText(canvas, NOTICE, (8, canvas.shape[0] - 8), FONT, 0.45, GREY, 1, cv2.LINE_AA)
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB)
