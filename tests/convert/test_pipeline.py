"""convert_models end to end on a tiny model: formats, verification, manifest, caching,
determinism, atomicity and bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from hemiface.convert import artifact
from hemiface.convert.calibration import DatasetError
from hemiface.convert.pipeline import ConvertOptionError, ConvertSettings, convert_models
from hemiface.core.errors import HemifaceError
from hemiface.runtime.classifier import TFLiteClassifier
from hemiface.runtime.images import list_images, read_image
from hemiface.runtime.manifest import FORMATS, MANIFEST_NAME, load_manifest
from hemiface.runtime.preprocess import to_tensor


def _keras_p(models_dir: Path, tensor: np.ndarray) -> float:
    from hemiface.kerasio import load_keras_model

    model = load_keras_model(models_dir / "tiny.keras").model
    return float(np.asarray(model(tensor, training=False)).reshape(-1)[0])


def test_every_format_runs_in_litert_with_the_manifests_preprocessing(
    model_set, models_dir: Path, images_dir: Path
):
    summary, out = model_set
    manifest = load_manifest(out)  # checks every sha256
    assert sorted(manifest.formats_of("tiny")) == sorted(FORMATS)
    image = read_image(list_images(images_dir)[0])
    for fmt in FORMATS:
        entry = manifest.entry("tiny", fmt)
        assert entry.file == f"tiny.{fmt}.tflite"
        classifier = TFLiteClassifier.open(out, entry, num_threads=1)
        tensor = to_tensor(image, entry.preprocessing)
        p = classifier.predict_one(tensor)
        assert 0.0 <= p <= 1.0
        if fmt == "float32":
            assert abs(p - _keras_p(models_dir, tensor)) < 1e-4
    int8 = manifest.entry("tiny", "int8")
    # int8 I/O by default: no QUANTIZE ops at the edges, the whole graph one XNNPACK partition.
    assert int8.input.dtype == "int8" and int8.output.dtype == "int8"
    assert int8.output.quantization.scale == pytest.approx(1 / 256)
    assert int8.output.quantization.zero_point == -128
    assert int8.delegate_partitions == 1 and int8.undelegated_ops == []
    assert int8.input.shape == [1, 32, 32, 3]  # static batch of one
    assert int8.calibration.startswith(f"folder {images_dir}")


def test_verification_figures_are_computed_not_assumed(model_set, models_dir: Path):
    summary, out = model_set
    manifest = load_manifest(out)
    images = list_images(summary.rows[0].verification.dataset.split(" ")[1])
    entry = manifest.entry("tiny", "int8")
    tensors = np.concatenate([to_tensor(read_image(p), entry.preprocessing) for p in images])
    from hemiface.kerasio import load_keras_model

    keras_p = np.asarray(load_keras_model(models_dir / "tiny.keras").model(tensors)).ravel()
    classifier = TFLiteClassifier.open(out, entry, num_threads=1)
    int8_p = classifier.predict(tensors)
    v = entry.verification
    assert v.n_images == len(images) == 24
    assert v.flips == int(np.sum((keras_p >= 0.5) != (int8_p >= 0.5)))
    assert v.agreement == pytest.approx(1 - v.flips / 24)
    assert v.max_abs_dp == pytest.approx(float(np.max(np.abs(int8_p - keras_p))), abs=1e-6)
    assert v.mean_abs_dp > 0  # int8 is not bit-identical to float
    labels = np.array([p.parent.name == "Right" for p in images])
    assert v.accuracy == pytest.approx(float(np.mean((int8_p >= 0.5) == labels)))
    float32 = manifest.entry("tiny", "float32").verification
    assert float32.max_abs_dp < 1e-4 and float32.flips == 0 and float32.latency_ms > 0


def test_summary_rows_and_sizes(model_set, models_dir: Path):
    summary, out = model_set
    assert [(r.name, r.format) for r in summary.rows] == [("tiny", f) for f in FORMATS]
    sizes = {r.format: r.size_bytes for r in summary.rows}
    assert sizes["float16"] < sizes["float32"] and sizes["int8"] < sizes["float32"]
    for row in summary.rows:
        assert row.size_bytes == (out / row.file).stat().st_size
        assert row.source_bytes == (models_dir / "tiny.keras").stat().st_size
        assert row.passed and not row.reused
    data = summary.to_dict()
    assert data["failed"] is False and len(data["rows"]) == 4


def test_h5_and_keras_sources_give_identical_artifacts_and_known_titles(
    model_set, models_dir: Path, tmp_path: Path
):
    _, out = model_set
    summary = convert_models(
        [models_dir / "tiny.h5"],
        tmp_path,
        ConvertSettings(formats=["float32", "float16"], names=["mobilenetv2_base_model"]),
    )
    assert summary.rows[0].title == "Base"
    assert summary.calibration is None and any("not verified" in n for n in summary.notes)
    for fmt in ("float32", "float16"):
        ours = (tmp_path / f"mobilenetv2_base_model.{fmt}.tflite").read_bytes()
        assert ours == (out / f"tiny.{fmt}.tflite").read_bytes()
    entry = load_manifest(tmp_path).entry("mobilenetv2_base_model", "float32")
    assert entry.source.format == "h5" and entry.source.file == "tiny.h5"


def test_repeated_conversion_gives_the_same_sha256(model_set, models_dir, images_dir, tmp_path):
    _, out = model_set
    again = convert_models([models_dir / "tiny.keras"], tmp_path, ConvertSettings(calib=images_dir))
    for row in again.rows:
        first = hashlib.sha256((out / row.file).read_bytes()).hexdigest()
        assert row.sha256 == first, row.format
        assert not row.reused


def test_rerun_into_the_same_folder_reuses_valid_work(models_dir, images_dir, tmp_path):
    formats = ["float32", "int8"]
    convert_models(
        [models_dir / "tiny.keras"], tmp_path, ConvertSettings(formats=formats, calib=images_dir)
    )
    manifest_bytes = (tmp_path / MANIFEST_NAME).read_bytes()
    again = convert_models(
        [models_dir / "tiny.keras"], tmp_path, ConvertSettings(formats=formats, calib=images_dir)
    )
    assert all(row.reused for row in again.rows)
    assert (tmp_path / MANIFEST_NAME).read_bytes() == manifest_bytes
    # A damaged artifact is not valid work: it is converted again.
    (tmp_path / "tiny.float32.tflite").write_bytes(b"garbage")
    third = convert_models(
        [models_dir / "tiny.keras"], tmp_path, ConvertSettings(formats=formats, calib=images_dir)
    )
    assert [row.reused for row in third.rows] == [False, True]
    load_manifest(tmp_path)


def test_failure_mid_conversion_leaves_the_folder_as_it_was(
    models_dir, images_dir, tmp_path, monkeypatch
):
    real = artifact.convert_to_tflite

    def failing(saved_model, fmt, *args, **kwargs):  # noqa: ANN001, ANN202
        if fmt == "int8":
            raise RuntimeError("simulated crash")
        return real(saved_model, fmt, *args, **kwargs)

    monkeypatch.setattr(artifact, "convert_to_tflite", failing)
    with pytest.raises(RuntimeError, match="simulated"):
        convert_models([models_dir / "tiny.keras"], tmp_path, ConvertSettings(calib=images_dir))
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no artifact, temp or manifest

    monkeypatch.setattr(artifact, "convert_to_tflite", real)
    convert_models([models_dir / "tiny.keras"], tmp_path, ConvertSettings(formats=["float32"]))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr(artifact, "convert_to_tflite", failing)
    with pytest.raises(RuntimeError):
        convert_models(
            [models_dir / "tiny.keras"],
            tmp_path,
            ConvertSettings(formats=["float16", "int8"], calib=images_dir),
        )
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    load_manifest(tmp_path)


def test_max_flip_rate_marks_the_artifact_failed_but_writes_it(tmp_path, images_dir):
    """A model whose outputs all sit just under 0.5: int8's 1/256 output steps flip some."""
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model(inputs, dense(x))
    dense.set_weights([np.full((3, 1), 0.004, "float32"), np.array([-0.004], "float32")])
    path = tmp_path / "edge.keras"
    model.save(path)
    out = tmp_path / "out"
    summary = convert_models(
        [path],
        out,
        ConvertSettings(formats=["float32", "int8"], calib=images_dir, max_flip_rate=0.0),
    )
    rows = {row.format: row for row in summary.rows}
    assert rows["float32"].passed
    assert not rows["int8"].passed and rows["int8"].verification.flips > 0
    assert "--max-flip-rate" in rows["int8"].problems[0]
    assert summary.failed
    entry = load_manifest(out).entry("edge", "int8")
    assert entry.verification.passed is False and entry.verification.max_flip_rate == 0.0


def test_int8_without_calibration_is_refused(models_dir, tmp_path):
    with pytest.raises(ConvertOptionError, match="full int8 needs calibration images"):
        convert_models([models_dir / "tiny.keras"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_options_are_one_line_each(models_dir, tmp_path):
    model = [models_dir / "tiny.keras"]
    cases = [
        (dict(formats=["float64"]), "unknown format"),
        (dict(formats=["float32"], int8_io="int4"), "--int8-io"),
        (dict(formats=["float32"], target="tflite-runtime-1.0"), "unknown --target"),
        (dict(formats=["float32"], max_flip_rate=2.0), "--max-flip-rate"),
        (dict(formats=["float32"], names=["a", "b"]), "--name"),
    ]
    for kwargs, message in cases:
        with pytest.raises(HemifaceError, match=message):
            convert_models(model, tmp_path / "out", ConvertSettings(**kwargs))
    with pytest.raises(HemifaceError, match="both be named"):
        convert_models(model * 2, tmp_path / "out", ConvertSettings(formats=["float32"]))
    assert not (tmp_path / "out").exists()


def test_empty_or_unreadable_calibration_folder(models_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no images"):
        convert_models([models_dir / "tiny.keras"], tmp_path / "out", ConvertSettings(calib=empty))
    broken = tmp_path / "broken" / "Left"
    broken.mkdir(parents=True)
    (broken / "a.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match="none of the 1 calibration images could be read"):
        convert_models(
            [models_dir / "tiny.keras"], tmp_path / "out", ConvertSettings(calib=broken.parent)
        )
    with pytest.raises(DatasetError, match="does not exist"):
        convert_models(
            [models_dir / "tiny.keras"], tmp_path / "out", ConvertSettings(calib=tmp_path / "nope")
        )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []


def test_unwritable_output_folder(models_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(HemifaceError, match="cannot write the model set here"):
        convert_models(
            [models_dir / "tiny.keras"], blocker / "out", ConvertSettings(formats=["float32"])
        )


def test_read_only_output_folder(models_dir, tmp_path, monkeypatch):
    """A folder that refuses writes (EACCES) is one clear line and nothing is written.

    Permission bits do not stop root (CI runs as root), so the refusal is simulated where
    the pipeline first writes: its probe file in the output folder.
    """
    import errno
    import tempfile

    out = tmp_path / "ro"
    out.mkdir()

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(HemifaceError, match="cannot write the model set here.*Permission denied"):
        convert_models([models_dir / "tiny.keras"], out, ConvertSettings(formats=["float32"]))
    assert list(out.iterdir()) == []


def test_target_214_makes_dynamic_range_loadable_there(models_dir, tmp_path):
    from hemiface.convert.compat import analyze_ops

    summary = convert_models(
        [models_dir / "tiny.keras"],
        tmp_path,
        ConvertSettings(formats=["dynamic"], target="tflite-runtime-2.14"),
    )
    ops = {
        (op.op, op.version)
        for op in analyze_ops((tmp_path / "tiny.dynamic.tflite").read_bytes()).ops
    }
    assert ("FULLY_CONNECTED", 12) not in ops and ("FULLY_CONNECTED", 9) in ops
    assert summary.rows[0].passed


def test_savedmodel_folder_converts_and_verifies(models_dir, images_dir, tmp_path):
    from hemiface.kerasio import load_keras_model

    folder = tmp_path / "tiny_savedmodel"
    load_keras_model(models_dir / "tiny.keras").model.export(str(folder), verbose=False)
    summary = convert_models(
        [folder], tmp_path / "out", ConvertSettings(formats=["float32"], verify=images_dir)
    )
    row = summary.rows[0]
    assert row.name == "tiny_savedmodel" and row.passed
    assert row.verification.max_abs_dp < 1e-4 and row.verification.n_images == 24
    entry = load_manifest(tmp_path / "out").entry("tiny_savedmodel", "float32")
    assert entry.source.format == "savedmodel"


def test_calib_synthetic_uses_hemiface_synth_and_says_so(
    models_dir, tmp_path, monkeypatch, image_writer
):
    import sys
    import types

    calls = []

    def generate_dataset(out, count, seed):  # noqa: ANN001, ANN202 - stands in for synth
        calls.append((count, seed))
        for split in ("train", "val", "test"):
            image_writer(Path(out) / split, per_class=4, seed=seed)

    fake = types.ModuleType("hemiface.synth.dataset")
    fake.generate_dataset = generate_dataset
    monkeypatch.setitem(sys.modules, "hemiface.synth.dataset", fake)
    convert_models(
        [models_dir / "tiny.keras"], tmp_path, ConvertSettings(formats=["int8"], calib="synthetic")
    )
    entry = load_manifest(tmp_path).entry("tiny", "int8")
    assert calls and entry.calibration.startswith("synthetic (hemiface.synth, seed 0, 8 images)")
    assert entry.verification.n_images == 8


def test_calib_synthetic_without_the_generator_is_one_line(models_dir, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "hemiface.synth.dataset", None)  # import fails
    with pytest.raises(DatasetError, match="--calib synthetic needs hemiface.synth"):
        convert_models(
            [models_dir / "tiny.keras"],
            tmp_path / "o",
            ConvertSettings(formats=["int8"], calib="synthetic"),
        )
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == []


def test_adding_a_format_keeps_the_others_of_the_same_source(models_dir, tmp_path):
    convert_models([models_dir / "tiny.keras"], tmp_path, ConvertSettings(formats=["float32"]))
    convert_models([models_dir / "tiny.keras"], tmp_path, ConvertSettings(formats=["float16"]))
    assert sorted(load_manifest(tmp_path).formats_of("tiny")) == ["float16", "float32"]
    # A different source under the same name drops the stale formats.
    convert_models(
        [models_dir / "tiny.h5"], tmp_path, ConvertSettings(formats=["float16"], names=["tiny"])
    )
    assert load_manifest(tmp_path).formats_of("tiny") == ["float16"]


def test_target_214_says_why_a_one_unit_dense_head_cannot_be_dynamic(tmp_path):
    """MobileNetV2's head, Dense(1280 -> 1), is FULLY_CONNECTED v12 even per-tensor."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(1280, 1)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    model.save(tmp_path / "head.keras")
    summary = convert_models(
        [tmp_path / "head.keras"],
        tmp_path / "out",
        ConvertSettings(formats=["float16", "dynamic"], target="tflite-runtime-2.14"),
    )
    rows = {row.format: row for row in summary.rows}
    assert rows["float16"].passed and not rows["dynamic"].passed
    assert "single output unit" in rows["dynamic"].problems[0]
    assert (tmp_path / "out" / "head.dynamic.tflite").exists()  # written, marked failed
