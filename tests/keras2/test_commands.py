"""convert, predict, explain and bench on Keras 2 files as the users saved them.

The reference is always what Keras 2 itself computes (tf_keras loading the file in the
test): a float32 artifact must stay within 1e-5 of it on every image. The CNN runs in the
fast tier; the MobileNetV2 (about 30 s to convert to float32 and int8 on a loaded 2-core
machine) in the slow one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hemiface.cli import app

CNN = "cnn_stroke_model"
MOBILENET = "mobilenetv2_base_model"
FLOAT32_TOLERANCE = 1e-5
# Full int8 of a random-weight MobileNetV2 calibrated on 16 noise images: a loose bound
# that still catches a broken artifact (measured here: max 0.17, mean 0.05).
INT8_MAX_DP = 0.25
INT8_MEAN_DP = 0.1


def _convert(folder: Path, sources: list[Path], pngs_dir: Path):  # noqa: ANN202
    from hemiface.convert.pipeline import ConvertSettings, convert_models

    summary = convert_models(
        sources,
        folder,
        ConvertSettings(formats=("float32", "int8"), calib=pngs_dir, verify=pngs_dir),
    )
    return summary, folder


@pytest.fixture(scope="session")
def keras2_set(tmp_path_factory: pytest.TempPathFactory, keras2_dir: Path, pngs_dir: Path):  # noqa: ANN201
    """The CNN's Keras-2 .keras, float32 and int8: (summary, folder)."""
    return _convert(tmp_path_factory.mktemp("keras2-set"), [keras2_dir / f"{CNN}.keras"], pngs_dir)


@pytest.fixture(scope="session")
def mobilenet_set(tmp_path_factory: pytest.TempPathFactory, keras2_dir: Path, pngs_dir: Path):  # noqa: ANN201
    """The MobileNetV2 .h5, float32 and int8: (summary, folder)."""
    folder = tmp_path_factory.mktemp("mobilenet-set")
    return _convert(folder, [keras2_dir / f"{MOBILENET}.h5"], pngs_dir)


def _runtime_p(model_set: Path, name: str, fmt: str, paths: list[Path]) -> np.ndarray:
    from hemiface.runtime.images import read_image
    from hemiface.runtime.modelset import load_model_set

    models = load_model_set(model_set, fmt=fmt, only=[name])
    return np.array([models.probabilities(read_image(p))[0] for p in paths])


def _check_set(summary, out: Path, name: str) -> None:  # noqa: ANN001
    import tf_keras

    from hemiface.runtime.manifest import load_manifest

    assert not summary.failed and summary.load_failures == []
    assert [(row.name, row.format) for row in summary.rows] == [(name, "float32"), (name, "int8")]
    for entry in load_manifest(out).models:
        assert entry.source.loader == "tf_keras"
        assert entry.converter.keras == tf_keras.__version__
        assert entry.verification.max_abs_dp <= (
            FLOAT32_TOLERANCE if entry.format == "float32" else INT8_MAX_DP
        )


def _check_against_keras2(out: Path, name: str, source: Path, png_tensors, predict) -> None:  # noqa: ANN001
    paths, tensors = png_tensors
    expected = predict(source, tensors)
    float32 = _runtime_p(out, name, "float32", paths)
    assert np.max(np.abs(float32 - expected)) <= FLOAT32_TOLERANCE
    int8 = np.abs(_runtime_p(out, name, "int8", paths) - expected)
    assert int8.max() <= INT8_MAX_DP and int8.mean() <= INT8_MEAN_DP


def test_convert_keras2_cnn_float32_within_1e5_and_int8(
    keras2_set, keras2_dir: Path, png_tensors, keras2_predict
):
    summary, out = keras2_set
    _check_set(summary, out, CNN)
    _check_against_keras2(out, CNN, keras2_dir / f"{CNN}.keras", png_tensors, keras2_predict)


@pytest.mark.slow
def test_convert_keras2_mobilenetv2_float32_within_1e5_and_int8(
    mobilenet_set, keras2_dir: Path, png_tensors, keras2_predict
):
    summary, out = mobilenet_set
    _check_set(summary, out, MOBILENET)
    source = keras2_dir / f"{MOBILENET}.h5"
    _check_against_keras2(out, MOBILENET, source, png_tensors, keras2_predict)


def test_predict_figure_on_a_keras2_model_set(keras2_set, pngs_dir: Path, tmp_path: Path):
    _, out = keras2_set
    image = sorted((pngs_dir / "Left").glob("*.png"))[0]
    figure = tmp_path / "figure.png"
    result = CliRunner().invoke(
        app,
        ["predict", str(image), "--models", str(out), "--format", "float32", "--json"]
        + ["--figure", str(figure)],
    )
    assert result.exit_code == 0, result.output
    line = json.loads(next(x for x in result.stdout.splitlines() if x.startswith("{")))
    assert set(line["models"]) == {CNN}
    assert figure.stat().st_size > 1000


def test_savedmodel_folder_converts_within_1e5(
    keras2_dir: Path, pngs_dir: Path, png_tensors, keras2_predict, tmp_path: Path
):
    from hemiface.convert.pipeline import ConvertSettings, convert_models
    from hemiface.runtime.manifest import load_manifest

    folder = keras2_dir / "cnn_savedmodel"
    summary = convert_models(
        [folder], tmp_path, ConvertSettings(formats=("float32",), verify=pngs_dir)
    )
    assert not summary.failed
    entry = load_manifest(tmp_path).entry("cnn_savedmodel", "float32")
    assert entry.source.loader == "saved_model" and entry.source.format == "savedmodel"
    paths, tensors = png_tensors
    expected = keras2_predict(folder, tensors)
    actual = _runtime_p(tmp_path, "cnn_savedmodel", "float32", paths)
    assert np.max(np.abs(actual - expected)) <= FLOAT32_TOLERANCE


def test_one_convert_run_reports_every_failing_file_and_converts_the_rest(
    keras2_dir: Path, tmp_path: Path
):
    not_a_model = tmp_path / "notes.h5"
    not_a_model.write_text("hello")
    missing = tmp_path / "missing.keras"
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["convert", str(not_a_model), str(keras2_dir / f"{CNN}.h5"), str(missing)]
        + ["--out", str(out), "--formats", "float32", "--json"],
    )
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert [row["name"] for row in data["rows"]] == [CNN] and data["failed"] is True
    failures = data["load_failures"]
    assert len(failures) == 2
    assert failures[0].startswith(str(not_a_model)) and "not a Keras model" in failures[0]
    assert failures[1].startswith(str(missing)) and "no such file" in failures[1]
    failed_lines = [x for x in result.stderr.splitlines() if x.startswith("failed:")]
    assert len(failed_lines) == 2
    assert (out / "hemiface.json").exists() and (out / f"{CNN}.float32.tflite").exists()


def test_convert_with_every_file_failing_prints_one_error_line_each(tmp_path: Path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "hemiface", "convert", str(tmp_path / "a.h5")]
        + [str(tmp_path / "b.keras"), "--out", str(tmp_path / "o"), "-f", "float32"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    lines = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 2 and "a.h5" in lines[0] and "b.keras" in lines[1]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "name, file",
    [(CNN, f"{CNN}.keras"), pytest.param(MOBILENET, f"{MOBILENET}.h5", marks=pytest.mark.slow)],
)
def test_explain_keras2_model_completeness_and_prediction(
    keras2_dir: Path, png_tensors, keras2_predict, tmp_path: Path, name: str, file: str
):
    """IG's gradients go through the tf-keras model: completeness holds (steps 'auto')."""
    from hemiface.explain.api import ExplainSettings, explain_image

    paths, tensors = png_tensors
    report = explain_image(
        paths[0],
        {name: keras2_dir / file},
        tmp_path,
        ExplainSettings(steps="auto"),
        use_annotations=False,
    )
    assert report.failures == []
    (model,) = report.models
    assert model.loader == "tf_keras"
    expected = keras2_predict(keras2_dir / file, tensors[:1])[0]
    assert abs(model.p_right - expected) <= 1e-6
    assert model.completeness_ok and model.completeness_error < 0.05
    assert np.abs(model.attributions).sum() > 0
    saved = json.loads((tmp_path / "explain.json").read_text())
    assert saved["models"][0]["loader"] == "tf_keras"


def test_gradients_through_tf_keras_match_keras3_on_the_same_file(
    keras2_dir: Path, png_tensors, tmp_path: Path
):
    """The CNN .h5 reads in both Keras: IG through either must agree."""
    import keras

    from hemiface.explain.api import ExplainSettings, explain_image

    paths, _ = png_tensors
    path = keras2_dir / f"{CNN}.h5"
    native = keras.models.load_model(path, compile=False)
    settings = ExplainSettings(steps=16)
    legacy = explain_image(paths[0], {CNN: path}, tmp_path / "a", settings, use_annotations=False)
    modern = explain_image(paths[0], {CNN: native}, tmp_path / "b", settings, use_annotations=False)
    a, b = legacy.models[0], modern.models[0]
    assert a.loader == "tf_keras" and b.loader == "in-memory"
    np.testing.assert_allclose(a.attributions, b.attributions, atol=1e-6)
    assert abs(a.p_right - b.p_right) <= 1e-6


def test_explain_sanity_check_clones_a_keras2_model(keras2_dir: Path, png_tensors, tmp_path: Path):
    from hemiface.explain.api import ExplainSettings, explain_image

    paths, _ = png_tensors
    report = explain_image(
        paths[0],
        {CNN: keras2_dir / f"{CNN}.keras"},
        tmp_path,
        ExplainSettings(steps=8, sanity=True, sanity_top_layers=1),
        use_annotations=False,
    )
    sanity = report.models[0].sanity
    assert sanity is not None and sanity["randomized_layers"] == 1
    assert -1.0 <= sanity["spearman_abs"] <= 1.0


def test_explain_prefers_a_loadable_file_of_the_same_name(
    keras2_dir: Path, png_tensors, tmp_path: Path
):
    import shutil

    from hemiface.explain.api import ExplainSettings, explain_image

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / f"{CNN}.keras").write_bytes(b"PK\x03\x04 not really a zip")
    shutil.copy(keras2_dir / f"{CNN}.h5", folder / f"{CNN}.h5")
    paths, _ = png_tensors
    settings = ExplainSettings(steps=8)
    report = explain_image(paths[0], folder, tmp_path / "out", settings, use_annotations=False)
    assert report.failures == []
    (model,) = report.models
    assert model.source == str(folder / f"{CNN}.h5") and model.loader == "tf_keras"


def test_bench_agreement_reads_keras2_sources(
    keras2_set, keras2_dir: Path, pngs_dir: Path, tmp_path: Path
):
    from hemiface.benchmarks.sections import validate

    _, model_set = keras2_set
    out = tmp_path / "bench"
    result = CliRunner().invoke(
        app,
        ["bench", "--tflite", str(model_set), "--keras", str(keras2_dir), "--data", str(pngs_dir)]
        + ["--out", str(out), "--quick", "--only", "tflite,latency,agreement,float32"]
        + ["--no-plots"],
    )
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert validate(results) == []
    agreement = results["agreement"]
    assert agreement["failures"] == []
    (vs,) = agreement["vs_source"]
    assert vs["model"] == CNN and vs["max_abs_dp"] <= FLOAT32_TOLERANCE


@pytest.mark.slow
def test_bench_keras_rows_on_keras2_files_and_a_savedmodel_folder(
    keras2_dir: Path, pngs_dir: Path, tmp_path: Path
):
    """model.predict and model(x) rows, each in its own process, for every source kind."""
    import shutil

    from hemiface.convert.pipeline import ConvertSettings, convert_models

    sources = tmp_path / "sources"
    sources.mkdir()
    shutil.copy(keras2_dir / f"{MOBILENET}.h5", sources)
    shutil.copy(keras2_dir / f"{CNN}.keras", sources)
    shutil.copytree(keras2_dir / "cnn_savedmodel", sources / "cnn_savedmodel")
    model_set = tmp_path / "set"
    convert_models(
        [sources / f"{MOBILENET}.h5", sources / f"{CNN}.keras", sources / "cnn_savedmodel"],
        model_set,
        ConvertSettings(formats=("float32",)),
    )
    out = tmp_path / "bench"
    result = CliRunner().invoke(
        app,
        ["bench", "--tflite", str(model_set), "--keras", str(sources), "--data", str(pngs_dir)]
        + ["--out", str(out), "--quick", "--only", "latency,agreement", "--no-plots"],
    )
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    rows = [r for r in results["latency"]["rows"] if r["engine"] != "tflite"]
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows), rows
    backends = {r["model"]: r["backend"] for r in rows}
    assert "tf_keras" in backends[MOBILENET] and "tf_keras" in backends[CNN]
    assert "SavedModel" in backends["cnn_savedmodel"]
    vs = results["agreement"]["vs_source"]
    assert len(vs) == 3 and all(item["max_abs_dp"] <= FLOAT32_TOLERANCE for item in vs)
