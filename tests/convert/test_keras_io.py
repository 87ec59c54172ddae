"""Loading and validating Keras models: every bad input is one ModelLoadError line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hemiface.core.checksum import sha256_file
from hemiface.kerasio import ModelLoadError, load_keras_model, model_name_for


def test_loads_keras_and_h5_with_name_format_and_sha(models_dir: Path):
    for file, fmt in (("tiny.keras", "keras"), ("tiny.h5", "h5")):
        loaded = load_keras_model(models_dir / file)
        assert loaded.name == "tiny"
        assert loaded.source_format == fmt
        assert loaded.sha256 == sha256_file(models_dir / file)
        assert loaded.input_shape == (32, 32, 3)
        assert tuple(loaded.model.outputs[0].shape) == (None, 1)


def test_loads_a_savedmodel_folder(models_dir: Path, tmp_path: Path):
    import numpy as np

    source = load_keras_model(models_dir / "tiny.keras").model
    folder = tmp_path / "exported_model"
    source.export(str(folder), verbose=False)
    loaded = load_keras_model(folder)
    assert loaded.source_format == "savedmodel"
    assert loaded.name == "exported_model"
    x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded.model(x)), np.asarray(source(x)), atol=1e-6)


def test_file_with_another_suffix_is_detected_by_content(models_dir: Path, tmp_path: Path):
    odd = tmp_path / "model.bin"
    odd.write_bytes((models_dir / "tiny.keras").read_bytes())
    assert load_keras_model(odd).source_format == "keras"


def test_missing_file(tmp_path: Path):
    with pytest.raises(ModelLoadError, match="no such file"):
        load_keras_model(tmp_path / "nope.h5")


def test_not_a_model(tmp_path: Path):
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(ModelLoadError, match="not a Keras model"):
        load_keras_model(text)
    with pytest.raises(ModelLoadError, match="not a SavedModel"):
        load_keras_model(tmp_path)


def _save(model, path: Path) -> Path:  # noqa: ANN001
    model.save(path)
    return path


def test_lambda_refused_in_safe_mode_and_allowed_with_unsafe(tmp_path: Path):
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    path = _save(
        keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x)), tmp_path / "lam.keras"
    )
    with pytest.raises(ModelLoadError, match=r"Lambda.*--unsafe") as info:
        load_keras_model(path)
    assert "\n" not in str(info.value)
    assert load_keras_model(path, unsafe=True).input_shape == (8, 8, 3)


def _head(activation: str | None, units: int = 1, channels: int = 3):  # noqa: ANN202
    import keras

    inputs = keras.Input((8, 8, channels))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(units, activation=activation)(x))


def test_output_must_be_one_sigmoid_unit(tmp_path: Path):
    with pytest.raises(ModelLoadError, match=r"output shape \(None, 2\).*softmax"):
        load_keras_model(_save(_head("softmax", 2), tmp_path / "soft.keras"))
    with pytest.raises(ModelLoadError, match="activation is linear, expected sigmoid"):
        load_keras_model(_save(_head(None), tmp_path / "linear.keras"))


def test_input_must_be_hxwx3(tmp_path: Path):
    import keras

    with pytest.raises(ModelLoadError, match=r"input shape \(None, 8, 8, 1\)"):
        load_keras_model(_save(_head("sigmoid", channels=1), tmp_path / "gray.keras"))
    inputs = keras.Input((5,))
    flat = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    with pytest.raises(ModelLoadError, match=r"input shape \(None, 5\)"):
        load_keras_model(_save(flat, tmp_path / "flat.keras"))


def test_multi_output_needs_output_index(tmp_path: Path):
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(
        inputs, [keras.layers.Dense(3)(x), keras.layers.Dense(1, activation="sigmoid")(x)]
    )
    path = _save(model, tmp_path / "multi.keras")
    with pytest.raises(ModelLoadError, match="2 outputs.*--output-index"):
        load_keras_model(path)
    with pytest.raises(ModelLoadError, match="out of range"):
        load_keras_model(path, output_index=5)
    with pytest.raises(ModelLoadError, match=r"output shape \(None, 3\)"):
        load_keras_model(path, output_index=0)
    loaded = load_keras_model(path, output_index=1)
    assert len(loaded.model.outputs) == 1


def _h5_with_bad_dense(models_dir: Path, path: Path, keras_version: str | None) -> Path:
    """An .h5 whose config Keras rejects (an argument Dense does not know), as happens to
    MobileNet files from TF 2.x (DepthwiseConv2D(groups=1)); optionally marked Keras 2."""
    import h5py

    path.write_bytes((models_dir / "tiny.h5").read_bytes())
    with h5py.File(path, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        dense = next(
            layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense"
        )
        dense["config"]["groups"] = 1
        handle.attrs["model_config"] = json.dumps(config)
        if keras_version is not None:
            handle.attrs["keras_version"] = keras_version
    return path


def test_h5_keras_cannot_load_keeps_the_cause_keras_gave(models_dir: Path, tmp_path: Path):
    path = _h5_with_bad_dense(models_dir, tmp_path / "bad3.h5", None)
    with pytest.raises(ModelLoadError) as info:
        load_keras_model(path)
    message = str(info.value)
    assert message.startswith(f"{path}: Keras 3.") and "\n" not in message
    assert "Unrecognized keyword arguments passed to Dense: {'groups': 1}" in message


def test_h5_marked_keras2_goes_to_tf_keras_and_keeps_its_cause(models_dir: Path, tmp_path: Path):
    path = _h5_with_bad_dense(models_dir, tmp_path / "bad2.h5", "2.15.0")
    with pytest.raises(ModelLoadError) as info:
        load_keras_model(path)
    message = str(info.value)
    assert "tf-keras 2." in message and "Keras 2.15.0 file" in message and "\n" not in message
    # A Keras 3 config under a Keras 2 label: tf-keras names what it does not know.
    assert "Unrecognized keyword arguments" in message


def test_weights_only_h5_is_not_a_model(tmp_path: Path):
    path = tmp_path / "tiny.weights.h5"
    _head("sigmoid").save_weights(path)
    with pytest.raises(ModelLoadError, match="without a model config"):
        load_keras_model(path)


def test_model_name_for_strips_model_suffixes():
    assert model_name_for(Path("a/cnn_stroke_model.h5")) == "cnn_stroke_model"
    assert model_name_for(Path("b/mobilenetv2_base_model.keras")) == "mobilenetv2_base_model"
    assert model_name_for(Path("c/saved_folder")) == "saved_folder"
