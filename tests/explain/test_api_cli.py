"""`explain_image` and `hemiface explain` end to end: real files, tiny saved models."""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest

from hemiface.core.errors import HemifaceError
from hemiface.explain.api import explain_image
from hemiface.explain.settings import ExplainSettings

NAMES = ("mobilenetv2_base_model", "mobilenetv2_finetuned_model", "cnn_stroke_model")


def tiny_model(keras, size, seed, channels=3):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, channels))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.MaxPooling2D(4)(h)
    h = keras.layers.Flatten()(h)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(h))


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, keras):
    folder = tmp_path_factory.mktemp("models")
    tiny_model(keras, 32, 1).save(folder / f"{NAMES[0]}.h5")
    tiny_model(keras, 32, 2).save(folder / f"{NAMES[1]}.keras")
    tiny_model(keras, 24, 3).save(folder / f"{NAMES[2]}.keras")
    return folder


@pytest.fixture(scope="module")
def face_jpeg(tmp_path_factory):
    from skimage import data

    path = tmp_path_factory.mktemp("images") / "astronaut.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(data.astronaut()[:300, 100:400], cv2.COLOR_RGB2BGR))
    return path


def run_cli(monkeypatch, capsys, *args):
    from hemiface import cli

    monkeypatch.setattr(sys, "argv", ["hemiface", "explain", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_explain_image_writes_every_output(model_folder, face_jpeg, tmp_path):
    mask = np.zeros((300, 300), np.uint8)
    mask[100:200, 150:300] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    report = explain_image(
        face_jpeg,
        model_folder,
        tmp_path / "out",
        ExplainSettings(steps=16, deletion=True),
        mask=tmp_path / "mask.png",
        face_box=(100, 50, 120, 150),
    )
    assert [m.title for m in report.models] == ["Base", "Fine-tuned", "CNN"]
    assert report.midline == {"x_fraction": 160 / 300, "source": "face box given"}
    data = json.loads((tmp_path / "out" / "explain.json").read_text())
    for model, entry in zip(report.models, data["models"], strict=True):
        assert entry["explained"] == entry["predicted"]  # default: the predicted class
        assert entry["predicted"] == ("Right" if entry["p_right"] >= 0.5 else "Left")
        assert entry["completeness_error"] < 0.05
        assert entry["mask"]["mask_area_share"] == pytest.approx(1 / 6, abs=0.02)
        assert len(entry["deletion"]["scores"]) == 17
        saved = np.load(entry["files"]["attributions"])
        assert saved.shape == (*entry["input_size"], 3)
        assert saved.sum() == pytest.approx(entry["sum_attributions"], rel=1e-4, abs=1e-6)
        overlay = cv2.imread(entry["files"]["overlay"])
        assert overlay is not None and overlay.shape[0] >= 448
        assert "attributions" not in entry
        assert entry["laterality"]["midline_x"] == pytest.approx(160 / 300 * model.input_size[1])
    assert data["models"][0]["source_format"] == "h5"
    assert cv2.imread(data["files"]["comparison"]) is not None
    assert "patient's RIGHT" in data["convention"]


def test_target_flag_explains_the_other_class(model_folder, face_jpeg, tmp_path):
    models = {"m": model_folder / f"{NAMES[2]}.keras"}
    predicted = explain_image(face_jpeg, models, tmp_path / "a", ExplainSettings(steps=8)).models[0]
    other = "Left" if predicted.explained == "Right" else "Right"
    flipped_settings = ExplainSettings(steps=8, target=other)
    flipped = explain_image(face_jpeg, models, tmp_path / "b", flipped_settings).models[0]
    assert flipped.explained == other and flipped.predicted == predicted.predicted
    np.testing.assert_array_equal(flipped.attributions, -predicted.attributions)


def test_cli_runs_and_prints_the_table(model_folder, face_jpeg, tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(
        monkeypatch, capsys, face_jpeg, "--models", model_folder, "--out", tmp_path / "o",
        "--steps", "auto", "--rule", "riemann_middle", "--baseline", "noise",
        "--baseline-samples", "2", "--smooth", "2", "--sanity",
    )  # fmt: skip
    assert code in (0, None), err
    assert "CNN" in out and "patient's RIGHT" in out
    report = json.loads((tmp_path / "o" / "explain.json").read_text())
    assert report["settings"]["steps"] == "auto"
    for model in report["models"]:
        assert model["sanity"]["randomized"] == "all layers"
        assert -1.0 <= model["sanity"]["spearman_abs"] <= 1.0


def test_missing_image_is_one_line(model_folder, tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, tmp_path / "nope.jpg", "--models", model_folder)
    assert code != 0
    assert err.strip().count("\n") == 0 and "nope.jpg: no such file" in err


def test_non_image_file_is_one_line(model_folder, tmp_path, monkeypatch, capsys):
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is not a picture")
    code, _, err = run_cli(monkeypatch, capsys, fake, "--models", model_folder)
    assert code != 0
    assert err.strip().count("\n") == 0 and "notes.jpg: not an image" in err


def test_model_with_the_wrong_input_shape_is_reported(
    keras, face_jpeg, tmp_path, monkeypatch, capsys
):
    folder = tmp_path / "models"
    folder.mkdir()
    tiny_model(keras, 16, 1, channels=1).save(folder / f"{NAMES[0]}.keras")
    tiny_model(keras, 16, 2).save(folder / f"{NAMES[2]}.keras")
    code, out, err = run_cli(
        monkeypatch, capsys, face_jpeg, "--models", folder, "--out", tmp_path / "o", "--steps", "4"
    )
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "input shape" in errors[0] and NAMES[0] in errors[0]
    assert "CNN" in out  # the good model was still explained


def test_bad_options_are_one_line(model_folder, face_jpeg, tmp_path, monkeypatch, capsys):
    for args, expected in [
        (("--steps", "many"), "--steps"),
        (("--steps", "0"), "steps must be a positive whole number"),
        (("--rule", "simpson"), "'--rule'"),
        (("--baseline", "grey"), "'--baseline'"),
        (("--target", "Up"), "'--target'"),
        (("--baseline-samples", "2"), "needs --baseline noise"),
        (("--sanity-top-layers", "0"), "--sanity-top-layers"),
    ]:
        code, _, err = run_cli(
            monkeypatch, capsys, face_jpeg, "--models", model_folder, "--out", tmp_path, *args
        )
        assert code != 0 and expected in err and err.strip().count("\n") == 0, err


def test_empty_models_folder_and_bad_mask(face_jpeg, model_folder, tmp_path):
    with pytest.raises(HemifaceError, match="no Keras models found"):
        explain_image(face_jpeg, tmp_path, tmp_path / "out")
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.full((10, 10), 255, np.uint8))
    with pytest.raises(HemifaceError, match="mask is 10x10"):
        explain_image(face_jpeg, model_folder, tmp_path / "out", mask=small)


def test_models_of_one_architecture_share_a_graph_but_not_results(
    model_folder, face_jpeg, tmp_path
):
    """Base and fine-tuned share an architecture: the second reuses the first's traced graph
    with its own weights, and must give exactly what a fresh scorer gives."""
    import keras

    from hemiface.explain.api import ExplainSession
    from hemiface.explain.baselines import make_baselines
    from hemiface.explain.integrated_gradients import integrated_gradients
    from hemiface.explain.scorer import ModelScorer, Target, architecture_key
    from hemiface.runtime.images import read_image
    from hemiface.runtime.manifest import Preprocessing
    from hemiface.runtime.preprocess import to_tensor

    session = ExplainSession()
    settings = ExplainSettings(steps=8)
    report = explain_image(face_jpeg, model_folder, tmp_path / "out", settings, session=session)
    assert len(session.loaded) == 3 and len(session.scorers) == 2  # base + fine-tuned share
    again = explain_image(face_jpeg, model_folder, tmp_path / "again", settings, session=session)
    for first, second in zip(report.models, again.models, strict=True):
        np.testing.assert_array_equal(first.attributions, second.attributions)
    base = keras.models.load_model(model_folder / f"{NAMES[0]}.h5", compile=False)
    finetuned = keras.models.load_model(model_folder / f"{NAMES[1]}.keras", compile=False)
    assert architecture_key(base) == architecture_key(finetuned)
    x = to_tensor(read_image(face_jpeg), Preprocessing(width=32, height=32))[0]
    for model, explained in zip((base, finetuned), report.models[:2], strict=True):
        fresh = integrated_gradients(
            ModelScorer(model), x, make_baselines("black", x), Target(explained.explained), 8
        )
        np.testing.assert_allclose(explained.attributions, fresh.attributions, rtol=1e-5, atol=1e-9)
    assert not np.allclose(report.models[0].attributions, report.models[1].attributions)


def test_synthetic_dataset_image_brings_its_mask_and_midline(keras, tmp_path):
    from hemiface.synth.dataset import generate_dataset, read_labels

    data = tmp_path / "data"
    generate_dataset(data, count=6, seed=1, size=64)
    row = read_labels(data)[0]
    model = tiny_model(keras, 32, 4)
    report = explain_image(
        data / row.file, {"m": model}, tmp_path / "out", ExplainSettings(steps=8)
    )
    assert report.annotation["label"] == row.label
    assert report.mask == str(data / row.mask)
    assert report.midline["source"] == "landmarks (labels.csv)"
    eyes = (
        row.landmarks["image_left_eye_inner"][0] + row.landmarks["image_right_eye_inner"][0]
    ) / 2
    expected = (eyes + row.landmarks["nose_tip"][0]) / 2 / 64
    assert report.midline["x_fraction"] == pytest.approx(expected)
    assert report.models[0].mask["mask_area_share"] > 0
    plain = explain_image(
        data / row.file,
        {"m": model},
        tmp_path / "o2",
        ExplainSettings(steps=8),
        use_annotations=False,
    )
    assert plain.annotation is None and plain.models[0].mask is None


def test_settings_are_checked_when_made():
    from hemiface.core.domain import LABELS
    from hemiface.explain.baselines import BASELINES
    from hemiface.explain.rules import RULES
    from hemiface.explain.settings import Baseline, IGSettings, Label, Rule

    assert tuple(rule.value for rule in Rule) == RULES
    assert tuple(baseline.value for baseline in Baseline) == BASELINES
    assert tuple(label.value for label in Label) == LABELS
    for bad, message in [
        (dict(steps=0), "steps must be"),
        (dict(steps="many"), "steps must be"),
        (dict(rule="simpson"), "integration rule"),
        (dict(batch_size=0), "--batch-size"),
        (dict(baseline="grey"), "unknown baseline"),
        (dict(baseline="black", baseline_samples=2), "needs --baseline noise"),
        (dict(smooth=-1), "--smooth"),
        (dict(sanity_top_layers=0), "--sanity-top-layers"),
        (dict(target="Up"), "Left or Right"),
    ]:
        with pytest.raises(HemifaceError, match=message):
            ExplainSettings(**bad)
    settings = ExplainSettings(steps="auto", rule="gauss_legendre", batch_size=3, smooth=2)
    assert settings.ig == IGSettings(steps="auto", rule="gauss_legendre", batch_size=3)
