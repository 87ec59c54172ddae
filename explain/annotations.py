"""Ground truth next to an image of a `hemiface synth` data set (its labels.csv row).

When the image lies inside such a data set, its droop mask, true label and landmarks are
known; `hemiface explain` then uses the mask for the lesion metrics and the landmarks for
the face's midline without extra flags (--mask / --face-box still win).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hemiface.core.errors import HemifaceError

LABELS_CSV = "labels.csv"
SEARCH_LEVELS = 4  # OUT/test/Left/face.jpg sits three folders below OUT
# Landmarks on the face's vertical axis, as (left, right) pairs averaged or single points.
MIDLINE_POINTS = (("image_left_eye_inner", "image_right_eye_inner"), ("nose_tip", "nose_tip"))


@dataclass
class ImageAnnotation:
    labels_csv: Path
    label: str  # the patient's affected side
    severity: float
    mask: Path
    face_box: tuple[int, int, int, int]
    midline_x: float | None  # in image pixels, from the landmarks

    def to_dict(self) -> dict:
        return {
            "labels_csv": str(self.labels_csv),
            "label": self.label,
            "severity": self.severity,
            "mask": str(self.mask),
            "face_box": list(self.face_box),
            "midline_x": self.midline_x,
        }


def find_annotation(image: Path) -> ImageAnnotation | None:
    """The labels.csv row of `image` if it belongs to a synthetic data set, else None."""
    try:
        from hemiface.synth.dataset import read_labels
    except ImportError:
        return None
    image = Path(image).resolve()
    for folder in list(image.parents)[:SEARCH_LEVELS]:
        if not (folder / LABELS_CSV).is_file():
            continue
        relative = image.relative_to(folder).as_posix()
        try:
            rows = read_labels(folder)
        except HemifaceError:
            return None
        for row in rows:
            if row.file == relative:
                points = [
                    (row.landmarks[a][0] + row.landmarks[b][0]) / 2.0
                    for a, b in MIDLINE_POINTS
                    if a in row.landmarks and b in row.landmarks
                ]
                return ImageAnnotation(
                    labels_csv=folder / LABELS_CSV,
                    label=row.label,
                    severity=row.severity,
                    mask=folder / row.mask,
                    face_box=row.face_box,
                    midline_x=sum(points) / len(points) if points else None,
                )
        return None
    return None
