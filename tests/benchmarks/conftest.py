"""Tiny real models for the benchmark tests: three Keras models (.keras and .h5), their
float32 and full-int8 TFLite artifacts in a model set with a manifest, and a labelled
folder of real JPEGs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from support import tensor_specs, tflite_bytes

from hemiface.runtime.images import write_image
from hemiface.runtime.manifest import (
    Manifest,
    ModelEntry,
    Preprocessing,
    SourceModel,
    load_manifest,
    save_manifest,
    sha256_file,
)

SIZE = 32
MODELS = (
    ("mobilenetv2_base_model", "Base", ".keras"),
    ("mobilenetv2_finetuned_model", "Fine-tuned", ".keras"),
    ("cnn_stroke_model", "CNN", ".h5"),
)
FORMATS = ("float32", "int8")


def tiny_model(seed: int):  # noqa: ANN201 - keras is imported lazily
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(6, 1)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(3, activation="relu")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


# conv 15*15*4*27 + depthwise 15*15*4*9 + pointwise 15*15*6*4 + dense 3*6 + dense 1*3
TINY_MACS = 15 * 15 * 4 * 27 + 15 * 15 * 4 * 9 + 15 * 15 * 6 * 4 + 3 * 6 + 1 * 3


def _write_images(folder: Path, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for label in ("Left", "Right"):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
            # A bright patch on one side so the tiny models see some structure.
            if label == "Right":
                image[:, :16] = np.clip(image[:, :16].astype(int) + 80, 0, 255)
            write_image(folder / label / f"{label.lower()}_{i:02d}.jpg", image)


@pytest.fixture(scope="session")
def tiny() -> dict:
    """The tiny model's builder and its hand-counted MACs."""
    return {"model": tiny_model, "macs": TINY_MACS}


@pytest.fixture(scope="session")
def bench_assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{"keras": folder, "tflite": model set, "data": labelled folder}."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    root = tmp_path_factory.mktemp("bench_assets")
    keras_dir, model_set, data = root / "keras", root / "modelset", root / "data"
    keras_dir.mkdir()
    model_set.mkdir()
    _write_images(data / "test", 6, seed=1)
    calibration = np.random.default_rng(2).random((8, SIZE, SIZE, 3), dtype=np.float32)

    def representative():  # noqa: ANN202
        for image in calibration:
            yield [image[np.newaxis]]

    entries = []
    for seed, (name, title, suffix) in enumerate(MODELS):
        model = tiny_model(seed)
        source = keras_dir / f"{name}{suffix}"
        model.save(source)
        exported = root / f"export_{name}"
        model.export(str(exported), verbose=False)
        for fmt in FORMATS:
            path = model_set / f"{name}.{fmt}.tflite"
            content = tflite_bytes(exported, fmt, representative)
            path.write_bytes(content)
            input_spec, output_spec = tensor_specs(content)
            entries.append(
                ModelEntry(
                    name=name,
                    title=title,
                    format=fmt,
                    file=path.name,
                    sha256=sha256_file(path),
                    size_bytes=path.stat().st_size,
                    input=input_spec,
                    output=output_spec,
                    preprocessing=Preprocessing(width=SIZE, height=SIZE),
                    source=SourceModel(source.name, sha256_file(source), suffix[1:]),
                )
            )
        shutil.rmtree(exported)
    save_manifest(Manifest(entries), model_set)
    return {"keras": keras_dir, "tflite": model_set, "data": data}


@pytest.fixture()
def corrupt_model_set(bench_assets: dict[str, Path], tmp_path: Path) -> Path:
    """A copy of the model set whose CNN int8 artifact is garbage (with a matching sha256,
    so it reaches the interpreter) and whose Fine-tuned float32 file no longer matches."""
    folder = tmp_path / "corrupt"
    shutil.copytree(bench_assets["tflite"], folder)
    manifest = load_manifest(folder)
    bad = manifest.entry("cnn_stroke_model", "int8")
    (folder / bad.file).write_bytes(b"TFL3 this is not a flatbuffer" * 10)
    bad.sha256 = sha256_file(folder / bad.file)
    save_manifest(manifest, folder)
    changed = manifest.entry("mobilenetv2_finetuned_model", "float32")
    with open(folder / changed.file, "ab") as handle:
        handle.write(b"tampered")
    return folder
