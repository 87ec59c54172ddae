"""The one loader: Keras 2 files through tf-keras, Keras 3 files through Keras 3, SavedModel
folders through tf.saved_model; Lambda refused before deserialising; custom layers from a
named Python file; Keras's own cause kept in every one-line error."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hemiface.kerasio.files import code_layers, keras_cause, read_facts
from hemiface.kerasio.loading import ModelLoadError, load_keras_model

CNN = "cnn_stroke_model"
MOBILENET = "mobilenetv2_base_model"


@pytest.mark.parametrize(
    "file, source_format",
    [(f"{MOBILENET}.h5", "h5"), (f"{CNN}.h5", "h5"), (f"{CNN}.keras", "keras")],
)
def test_keras2_files_load_with_tf_keras_and_compute_what_keras2_computes(
    keras2_dir: Path, png_tensors, keras2_predict, file: str, source_format: str
):
    from hemiface.kerasio.files import is_tf_keras_model

    path = keras2_dir / file
    facts = read_facts(path, source_format)
    assert facts.is_keras2 and facts.keras_version.startswith("2.")
    loaded = load_keras_model(path)
    assert loaded.loader == "tf_keras" and loaded.source_format == source_format
    assert is_tf_keras_model(loaded.model)
    assert loaded.input_shape == (32, 32, 3)
    _, tensors = png_tensors
    p = np.asarray(loaded.model(tensors, training=False)).reshape(-1)
    expected = keras2_predict(path, tensors)
    np.testing.assert_array_equal(p, expected)
    assert np.ptp(expected) > 0.01, "the fixture model must not answer a constant"


def test_savedmodel_folder_and_keras3_files_keep_their_loaders(keras2_dir: Path, tmp_path: Path):
    import keras

    assert load_keras_model(keras2_dir / "cnn_savedmodel").loader == "saved_model"
    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(pooled))
    for suffix, source_format in ((".keras", "keras"), (".h5", "h5")):
        path = tmp_path / f"k3{suffix}"
        model.save(path)
        assert read_facts(path, source_format).major == 3
        loaded = load_keras_model(path)
        assert loaded.loader == "keras" and type(loaded.model).__module__.startswith("keras")


def _lambda_model_keras2():  # noqa: ANN202
    import tf_keras

    inputs = tf_keras.Input((8, 8, 3))
    scaled = tf_keras.layers.Lambda(lambda t: t * 2.0, name="double_it")(inputs)
    pooled = tf_keras.layers.GlobalAveragePooling2D()(scaled)
    return tf_keras.Model(inputs, tf_keras.layers.Dense(1, activation="sigmoid")(pooled))


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_keras2_lambda_is_refused_before_any_loader_sees_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
):
    import tf_keras

    path = tmp_path / f"lam{suffix}"
    _lambda_model_keras2().save(path)
    calls: list[str] = []
    real_load = tf_keras.models.load_model

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(str(args[0]))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(tf_keras.models, "load_model", spy)
    with pytest.raises(ModelLoadError, match=r"Lambda layer\(s\) double_it.*--unsafe") as info:
        load_keras_model(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert calls == [], "the file was deserialised before the Lambda was refused"
    loaded = load_keras_model(path, unsafe=True)
    assert loaded.loader == "tf_keras" and calls


def test_code_layers_finds_nested_lambdas_and_serialised_python_lambdas():
    config = {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {"class_name": "Functional", "config": {"layers": [{"class_name": "Conv2D"}]}},
                {"class_name": "Lambda", "config": {"name": "inner"}},
                {"class_name": "Dense", "config": {"activation": {"class_name": "__lambda__"}}},
            ]
        },
    }
    assert code_layers(config) == ["inner", "__lambda__"]
    assert code_layers({"class_name": "Sequential", "config": {"layers": []}}) == []


def test_keras2_keras_file_without_tf_keras_keeps_the_keras_cause(
    keras2_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    """Without tf-keras, Keras 3 is tried; its real reason (batch_input_shape) is kept."""
    from hemiface.kerasio import loading as keras_io

    monkeypatch.setattr(keras_io, "import_tf_keras", lambda path: None)
    with pytest.raises(ModelLoadError) as info:
        load_keras_model(keras2_dir / f"{CNN}.keras")
    message = str(info.value)
    assert "\n" not in message and f"{CNN}.keras" in message
    assert "batch_input_shape" in message and "Unrecognized keyword arguments" in message
    assert "tf-keras" in message and "Keras 2." in message


def test_keras_cause_keeps_the_tail_and_drops_the_config():
    exc = TypeError(
        "<class 'Sequential'> could not be deserialized properly. Please ensure ... "
        "config={'module': 'keras', 'layers': [1, 2, 3]}.\n\nException encountered: "
        "Unrecognized keyword arguments passed to Conv2D: {'batch_input_shape': [None, 8, 8, 3]}"
    )
    assert keras_cause(exc) == (
        "Unrecognized keyword arguments passed to Conv2D: {'batch_input_shape': [None, 8, 8, 3]}"
    )
    located = ValueError(
        "Could not locate class 'Scale'. Make sure custom classes are decorated with "
        "`@keras.saving.register_keras_serializable()`. Full object config: {'module': 'x'}"
    )
    assert keras_cause(located).startswith("Could not locate class 'Scale'.")
    assert "Full object config" not in keras_cause(located)


CUSTOM_LAYER = '''
import {package} as K


class Scale(K.layers.Layer):
    """Multiplies by a learned scalar."""

    def build(self, input_shape):
        self.factor = self.add_weight(name="factor", shape=(), initializer="ones")

    def call(self, inputs):
        return inputs * self.factor
'''


@pytest.mark.parametrize("package", ["keras", "tf_keras"])
def test_custom_layers_load_from_a_named_python_file(tmp_path: Path, package: str):
    """Without the file: one line with Keras's reason and the --custom-objects route."""
    import importlib

    from hemiface.kerasio.files import load_custom_objects

    keras = importlib.import_module(package)
    source = tmp_path / f"layers_{package}.py"
    source.write_text(CUSTOM_LAYER.format(package=package))
    scale = load_custom_objects(source)["Scale"]
    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(scale()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(pooled))
    path = tmp_path / "custom.keras"
    model.save(path)
    sys.modules.pop(scale.__module__)  # a new process: nothing knows the class yet
    with pytest.raises(ModelLoadError) as info:
        load_keras_model(path)
    message = str(info.value)
    assert "\n" not in message and "Scale" in message and "--custom-objects" in message
    loaded = load_keras_model(path, custom_objects=source)
    x = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded.model(x)), np.asarray(model(x)), atol=1e-7)
    sys.modules.pop(scale.__module__, None)


def test_a_broken_custom_objects_file_is_one_line(tmp_path: Path, keras2_dir: Path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('no GPU here')\n")
    with pytest.raises(ModelLoadError, match=r"broken.py: importing .*RuntimeError: no GPU here"):
        load_keras_model(keras2_dir / f"{CNN}.h5", custom_objects=broken)
    with pytest.raises(ModelLoadError, match="must be a Python file"):
        load_keras_model(keras2_dir / f"{CNN}.h5", custom_objects=tmp_path / "x.txt")


def test_keras2_metadata_in_a_keras_archive_decides_the_loader(keras2_dir: Path, tmp_path: Path):
    """The archive's metadata.json, not the suffix or the layer config, says Keras 2."""
    original = keras2_dir / f"{CNN}.keras"
    with zipfile.ZipFile(original) as archive:
        metadata = json.loads(archive.read("metadata.json"))
    assert metadata["keras_version"].startswith("2.")
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(original.read_bytes())
    loaded = load_keras_model(renamed)
    assert loaded.source_format == "keras" and loaded.loader == "tf_keras"
