"""Shared-trunk fusion in convert: detection of the bit-identical prefix, the fused Keras
model, the fused artifacts in the manifest with their gates, and static shapes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hemiface.runtime.manifest import load_manifest

BASE, TUNED, CNN = "mobilenetv2_base_model", "mobilenetv2_finetuned_model", "cnn_stroke_model"
FUSED = f"{BASE}+{TUNED}"


def _load(folder: Path, name: str):  # noqa: ANN202
    from hemiface.kerasio import load_keras_model

    return load_keras_model(folder / name)


def test_the_shared_prefix_stops_at_the_first_changed_layer(sibling_sources: Path) -> None:
    from hemiface.convert.fuse import find_shared_trunks, shared_prefix_length

    models = sibling_sources / "models"
    base, tuned = _load(models, f"{BASE}.h5"), _load(models, f"{TUNED}.h5")
    names = [layer.name for layer in base.model.layers]
    prefix = shared_prefix_length(base.model, tuned.model)
    assert names[prefix] == "b2_expand"  # the first perturbed layer
    assert shared_prefix_length(base.model, base.model) == len(names)
    cnn = _load(models, f"{CNN}.keras")
    (trunk,) = find_shared_trunks([cnn, base, tuned])  # the CNN shares nothing
    assert trunk.names == [BASE, TUNED]
    assert trunk.last_shared == "b1_add" and trunk.first_unshared == "b2_expand"
    assert 0 < trunk.shared_params < min(trunk.params)
    assert find_shared_trunks([base, tuned], min_share=0.99) == []


def test_one_changed_batchnorm_statistic_shortens_the_trunk(sibling_sources: Path) -> None:
    from hemiface.convert.fuse import shared_prefix_length

    models = sibling_sources / "models"
    base, tuned = _load(models, f"{BASE}.h5"), _load(models, f"{TUNED}.h5")
    layer = tuned.model.get_layer("b1_dw_bn")
    gamma, beta, mean, var = layer.get_weights()
    var = var.copy()
    var[0] = np.nextafter(var[0], np.float32(10.0))  # one bit of one moving variance
    layer.set_weights([gamma, beta, mean, var])
    names = [la.name for la in base.model.layers]
    assert names[shared_prefix_length(base.model, tuned.model)] == "b1_dw_bn"


def test_the_fused_keras_model_reproduces_each_model(sibling_sources: Path) -> None:
    from hemiface.convert.fuse import build_fused_model, find_shared_trunks

    models = sibling_sources / "models"
    base, tuned = _load(models, f"{BASE}.h5"), _load(models, f"{TUNED}.h5")
    (trunk,) = find_shared_trunks([base, tuned])
    fused = build_fused_model(trunk)
    x = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    outputs = fused(x, training=False)
    for loaded in (base, tuned):
        expected = np.asarray(loaded.model(x, training=False))
        np.testing.assert_allclose(np.asarray(outputs[loaded.name]), expected, atol=1e-6)
    assert not np.allclose(np.asarray(outputs[BASE]), np.asarray(outputs[TUNED]))


def test_convert_writes_verified_fused_artifacts(fused_set) -> None:  # noqa: ANN001
    summary, out = fused_set
    manifest = load_manifest(out)  # checksums the fused files too
    assert [f.format for f in manifest.fused] == ["float32", "int8"]
    for fused in manifest.fused:
        assert fused.name == FUSED and fused.file == f"{FUSED}.{fused.format}.tflite"
        assert fused.models == [BASE, TUNED] and fused.passed
        assert sorted(o.index for o in fused.outputs) == [0, 1]
        assert fused.trunk_last_layer == "b1_add" and fused.trunk_layers > 10
        assert set(fused.verification) == {BASE, TUNED}
        assert all(v.passed and v.n_images == 24 for v in fused.verification.values())
        assert fused.delegate_partitions == 1 and fused.undelegated_ops == []
        assert fused.input.shape == [1, 32, 32, 3]
    float32 = manifest.fused[0]
    assert max(float32.max_abs_dp_vs_separate.values()) <= 1e-5
    for name in (BASE, TUNED):
        # The fused float32 output reproduces the Keras source like the separate artifact.
        assert float32.verification[name].max_abs_dp == pytest.approx(
            manifest.entry(name, "float32").verification.max_abs_dp, abs=1e-5
        )
    fused_rows = [r for r in summary.rows if r.file.startswith(FUSED)]
    assert len(fused_rows) == 4 and all(r.passed for r in fused_rows)
    assert any("share their first" in note for note in summary.notes)


def test_every_artifact_is_one_partition_with_static_shapes(fused_set) -> None:  # noqa: ANN001
    _, out = fused_set
    manifest = load_manifest(out)
    for entry in manifest.models:
        assert entry.input.shape[0] == 1
        assert entry.delegate_partitions == 1, (entry.name, entry.format, entry.undelegated_ops)
        assert entry.undelegated_ops == []  # no SHAPE/PACK from a dynamic Flatten, no QUANTIZE
    cnn = manifest.entry(CNN, "float32")
    assert "RESHAPE" in [op.op for op in cnn.ops] and "SHAPE" not in [op.op for op in cnn.ops]


def test_old_manifests_without_fusion_fields_still_load(fused_set, tmp_path: Path) -> None:  # noqa: ANN001
    import shutil

    _, out = fused_set
    copy = tmp_path / "set"
    shutil.copytree(out, copy)
    data = json.loads((copy / "hemiface.json").read_text())
    del data["fused"]
    for entry in data["models"]:
        del entry["delegate_partitions"], entry["undelegated_ops"]
    (copy / "hemiface.json").write_text(json.dumps(data))
    manifest = load_manifest(copy)
    assert manifest.fused == [] and manifest.models[0].delegate_partitions is None


def test_a_fused_entry_for_a_model_the_set_lacks_is_refused(fused_set, tmp_path: Path) -> None:  # noqa: ANN001
    import shutil

    from hemiface.runtime.errors import ManifestError

    _, out = fused_set
    copy = tmp_path / "set"
    shutil.copytree(out, copy)
    data = json.loads((copy / "hemiface.json").read_text())
    data["fused"][0]["outputs"][0]["model"] = "nobody"
    (copy / "hemiface.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="serves nobody"):
        load_manifest(copy)


def test_no_fuse_and_a_rerun_reuse(fused_set, sibling_sources: Path, tmp_path: Path) -> None:  # noqa: ANN001
    import shutil

    from hemiface.convert.pipeline import ConvertSettings, convert_models

    models = [sibling_sources / "models" / f"{n}.h5" for n in (BASE, TUNED)]
    plain = convert_models(
        models, tmp_path / "plain", ConvertSettings(formats=("float32",), fuse=False)
    )
    assert load_manifest(tmp_path / "plain").fused == []
    assert not any(r.file.startswith(FUSED) for r in plain.rows)
    _, out = fused_set
    again = tmp_path / "again"
    shutil.copytree(out, again)
    summary = convert_models(
        [*models, sibling_sources / "models" / f"{CNN}.keras"],
        again,
        ConvertSettings(formats=("float32", "int8"), calib=sibling_sources / "images"),
    )
    fused_rows = [r for r in summary.rows if r.file.startswith(FUSED)]
    assert fused_rows and all(r.reused for r in fused_rows)
    assert load_manifest(again).fused == load_manifest(out).fused


@pytest.mark.slow
def test_mobilenetv2_siblings_fuse_at_the_fine_tuning_cut(tmp_path: Path) -> None:
    """The users' architecture in small (alpha 0.35, 96x96): Rescaling, MobileNetV2 layers
    flat in the model, global_pool, dropout, droop_side; the sibling changed from
    block_16_expand up, as the reference recipe fine-tunes."""
    import keras

    from hemiface.convert.pipeline import ConvertSettings, convert_models
    from hemiface.runtime.modelset import load_model_set
    from hemiface.train.models import build_base_model, calibrate_batchnorm

    rng = np.random.default_rng(0)
    base = build_base_model("none", input_size=96, alpha=0.35)
    calibrate_batchnorm(base, rng.integers(0, 256, (8, 96, 96, 3)).astype(np.float32))
    tuned = keras.models.clone_model(base)
    tuned.set_weights(base.get_weights())
    names = [layer.name for layer in tuned.layers]
    for layer in tuned.layers[names.index("block_16_expand") :]:
        if isinstance(layer, keras.layers.BatchNormalization) or not layer.get_weights():
            continue
        layer.set_weights([w * rng.uniform(0.8, 1.2, w.shape) for w in layer.get_weights()])
    models = tmp_path / "models"
    models.mkdir()
    base.save(models / f"{BASE}.h5")
    tuned.save(models / f"{TUNED}.h5")
    summary = convert_models(
        [models / f"{BASE}.h5", models / f"{TUNED}.h5"],
        tmp_path / "set",
        ConvertSettings(formats=("float32",)),
    )
    assert not summary.failed
    (fused,) = load_manifest(tmp_path / "set").fused
    assert fused.trunk_last_layer == "block_15_add" and fused.passed
    assert fused.delegate_partitions == 1 and fused.undelegated_ops == []
    assert max(fused.max_abs_dp_vs_separate.values()) <= 1e-5
    image = rng.integers(0, 256, (120, 110, 3), dtype=np.uint8)
    together = load_model_set(tmp_path / "set", "float32", num_threads=1).probabilities(image)
    apart = load_model_set(tmp_path / "set", "float32", num_threads=1, fuse=False)
    assert np.max(np.abs(np.subtract(together, apart.probabilities(image)))) <= 1e-5


def test_keras2_siblings_fuse_through_tf_keras(tmp_path: Path) -> None:
    """Keras 2 files load through tf-keras: the trunk is found, the fused model is built
    with tf-keras, and the export has a static batch there too."""
    import tf_keras

    from hemiface.convert.pipeline import ConvertSettings, convert_models
    from hemiface.kerasio import load_keras_model

    tf_keras.utils.set_random_seed(0)
    layers = tf_keras.layers
    inputs = tf_keras.Input((32, 32, 3), name="image")
    x = layers.BatchNormalization(name="bn")(
        layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    )
    stem = layers.ReLU(name="relu")(x)
    x = layers.Add(name="add")([stem, layers.Conv2D(8, 1, name="b1")(stem)])
    x = layers.GlobalAveragePooling2D(name="global_pool")(layers.Conv2D(16, 1, name="b2")(x))
    base = tf_keras.Model(inputs, layers.Dense(1, activation="sigmoid", name="droop_side")(x))
    tuned = tf_keras.models.clone_model(base)
    tuned.set_weights(base.get_weights())
    layer = tuned.get_layer("b2")
    layer.set_weights([w * 1.3 for w in layer.get_weights()])
    files = [tmp_path / f"{BASE}.h5", tmp_path / f"{TUNED}.h5"]
    base.save(files[0])
    tuned.save(files[1])
    assert load_keras_model(files[0]).loader == "tf_keras"
    summary = convert_models(
        files, tmp_path / "set", ConvertSettings(formats=("float32",), calib="synthetic")
    )
    assert not summary.failed
    (fused,) = load_manifest(tmp_path / "set").fused
    assert fused.passed and fused.trunk_last_layer == "add" and fused.input.shape == [1, 32, 32, 3]
    assert max(fused.max_abs_dp_vs_separate.values()) <= 1e-5 and fused.delegate_partitions == 1
