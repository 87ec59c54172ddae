"""Predict on image files: expand the arguments, run the set on each, keep going past bad files.

Every path yields one `ImageResult`: a prediction, "no face" (crop="face" found none; a
state, not an error), or the one-line error that made the file unusable. The caller
decides the exit code from `failed`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.core.folders import IMAGE_SUFFIXES
from hemiface.core.folders import image_files as list_images
from hemiface.runtime.align import align_face
from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.face import DEFAULT_MARGIN, Detector, FaceBox, center_crop, detect_face
from hemiface.runtime.images import read_image
from hemiface.runtime.modelset import ModelSet, SetPrediction


@dataclass
class ImageResult:
    path: Path
    prediction: SetPrediction | None = None
    box: FaceBox | None = None
    error: str | None = None
    no_face: bool = False
    image: np.ndarray | None = None  # the RGB input, kept only when asked (for figures)
    rotation: float = 0.0  # degrees the face crop was turned counter-clockwise (eyes level)

    @property
    def failed(self) -> bool:
        return self.error is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"image": str(self.path)}
        if self.error is not None:
            out["error"] = self.error
            return out
        out["face"] = self.box.as_list() if self.box else None
        if self.box is not None:
            out["rotation_deg"] = round(self.rotation, 1)
        if self.no_face:
            out["status"] = "no face"
        if self.prediction is not None:
            p = self.prediction
            out["format"] = p.format
            # Probabilities unrounded: comparing runs across machines needs every digit.
            out["models"] = {
                m.name: {"p": m.p, "label": m.label, "uncertain": m.uncertain} for m in p.models
            }
            out["ensemble"] = {
                "p": p.mean_p,
                "label": p.label,
                "agree": p.agree,
                "of": len(p.models),
                "disagree": p.disagree,
                "uncertain": p.uncertain,
            }
        return out


def expand_inputs(inputs: Sequence[Path]) -> Iterator[tuple[Path, str | None]]:
    """(image path, None) for each image; (path, error) for a missing path or empty folder."""
    for item in inputs:
        path = Path(item)
        try:
            info = os.stat(path)
            images = list_images(path) if stat.S_ISDIR(info.st_mode) else None
        except FileNotFoundError:
            yield path, f"{path}: no such file or folder"
            continue
        except OSError as exc:  # a name too long, a folder that cannot be read
            yield path, f"{path}: cannot read it ({exc.strerror or exc})"
            continue
        if images is None:
            yield path, None
            continue
        if not images:
            yield path, f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})"
        for image in images:
            yield image, None


def predict_files(
    inputs: Sequence[Path],
    model_set: ModelSet,
    crop: str = "none",
    margin: float = DEFAULT_MARGIN,
    keep_images: bool = False,
    detector: Detector | None = None,
    level: bool = True,
) -> Iterator[ImageResult]:
    """One ImageResult a file, in order; a bad file is a result with `error`, never a raise.

    With crop="face", `detector` finds the face (default: the Haar cascade) and, when
    `level`, a face with a known roll is turned upright before the crop.
    """
    for path, problem in expand_inputs(inputs):
        if problem is not None:
            yield ImageResult(path, error=problem)
            continue
        try:
            rgb = read_image(path)
        except HemifaceError as exc:
            yield ImageResult(path, error=str(exc))
            continue
        result = ImageResult(path, image=rgb if keep_images else None)
        region: np.ndarray | None = rgb
        if crop == "face":
            result.box = detect_face(rgb, detector)
            region = None
            if result.box is not None:
                region, result.rotation = align_face(rgb, result.box, margin, level)
            result.no_face = result.box is None
        elif crop == "center":
            region = center_crop(rgb)
        if region is not None:
            try:
                result.prediction = model_set.predict(region)
            except HemifaceError as exc:  # the interpreter failed on this input
                result.error = f"{path}: {exc}"
        yield result
