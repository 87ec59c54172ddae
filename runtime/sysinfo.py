"""What this machine has: versions, interpreter backends, CPU, the Haar cascade.

Reads package metadata rather than importing TensorFlow, so `hemiface info` stays fast
and works on a Pi.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hemiface.runtime.backends import default_num_threads, installed_backends, physical_cores

HAAR_FACE_FILE = "haarcascade_frontalface_default.xml"


def _version(*dists: str) -> str | None:
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware"):
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Where distributions' own OpenCV packages put the cascades (Debian and Raspberry Pi OS:
# the opencv-data package), for the python3-opencv build, which has no cv2.data.
SYSTEM_HAAR_FOLDERS = (
    Path("/usr/share/opencv4/haarcascades"),
    Path("/usr/share/opencv/haarcascades"),
)


def haar_cascade_path() -> Path | None:
    """The frontal-face Haar cascade: bundled with the OpenCV wheel, or the system's."""
    if not hasattr(cv2, "CascadeClassifier"):
        return None
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    folders = ([Path(folder)] if folder is not None else []) + list(SYSTEM_HAAR_FOLDERS)
    return next((f / HAAR_FACE_FILE for f in folders if (f / HAAR_FACE_FILE).exists()), None)


def collect_info() -> dict[str, Any]:
    cascade = haar_cascade_path()
    return {
        "hemiface": _version("hemiface"),
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "opencv_distribution": next(
            (
                name
                for name in ("opencv-python", "opencv-python-headless", "opencv-contrib-python")
                if _version(name)
            ),
            None,
        ),
        "interpreter_backends": installed_backends(),
        "tensorflow": _version("tensorflow", "tensorflow-cpu"),
        "keras": _version("keras"),
        "matplotlib": _version("matplotlib"),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": physical_cores(),
        "default_num_threads": default_num_threads(),
        "haar_cascade": str(cascade) if cascade else None,
    }
