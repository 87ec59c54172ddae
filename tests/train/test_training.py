from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hemiface.core.domain import MODEL_FILES
from hemiface.core.errors import HemifaceError
from hemiface.synth.dataset import generate_dataset
from hemiface.train.config import TrainConfig
from hemiface.train.names import REPORT_JSON, REPORT_MD

keras = pytest.importorskip("keras")

TINY = TrainConfig(input_size=64, alpha=0.35, batch_size=16, head_epochs=2, finetune_epochs=1,
                   cnn_epochs=2, patience=2, mobilenet_train_images=40,
                   scratch_finetune_epochs=1)  # fmt: skip


@pytest.mark.slow
def test_tiny_cnn_beats_chance_on_held_out_faces(clean_set):
    from hemiface.train.models import build_cnn

    keras.utils.set_random_seed(0)
    (x, y), (x_test, y_test) = clean_set["train"], clean_set["test"]
    # Mirrored copies with swapped labels double the set (the flip-and-swap augmentation).
    x = np.concatenate([x, x[:, :, ::-1]]) / 255.0
    y = np.concatenate([y, 1.0 - y])
    model = build_cnn(96)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    p = model.predict(x_test / 255.0, verbose=0).reshape(-1)
    accuracy = float(np.mean((p >= 0.5) == (y_test > 0.5)))
    assert accuracy >= 0.75, accuracy


@pytest.mark.slow
def test_train_all_writes_reloadable_models_and_resumes(tmp_path):
    from hemiface.train.trainer import train_all

    data = tmp_path / "data"
    generate_dataset(data, 80, seed=0, size=64)
    out = tmp_path / "models"
    stages: list[str] = []
    report = train_all(data, out, weights="none", config=TINY,
                       progress=lambda stage, done, total: stages.append(stage))  # fmt: skip
    assert any("features" in s for s in stages) and any("CNN" in s for s in stages)
    for name, file in MODEL_FILES.items():
        model = keras.models.load_model(str(out / file), safe_mode=True)
        assert model.input_shape == (None, 64, 64, 3) and model.output_shape == (None, 1)
        assert report.reload_max_abs_diff[name] < 1e-4
    assert (out / "mobilenetv2_base_model.h5").read_bytes()[:4] == b"\x89HDF"
    assert (out / "cnn_stroke_model.keras").read_bytes()[:2] == b"PK"
    saved = json.loads((out / REPORT_JSON).read_text())
    assert saved["weights_used"].startswith("random init")
    assert saved["backbone_pretrained"] is False
    for entry in saved["models"]:
        metrics = entry["metrics"]
        assert 0.0 <= metrics["accuracy"] <= 1.0 and 0.0 <= metrics["roc_auc"] <= 1.0
        assert metrics["flip_consistency"] >= 0.0 and metrics["accuracy_by_severity"]
    assert "Fine-tuned" in (out / REPORT_MD).read_text()
    # The fine-tuned model differs from the base model: its upper layers were trained.
    base = keras.models.load_model(str(out / MODEL_FILES["mobilenetv2_base_model"]))
    tuned = keras.models.load_model(str(out / MODEL_FILES["mobilenetv2_finetuned_model"]))
    assert not np.allclose(base.get_layer("Conv_1").get_weights()[0],
                           tuned.get_layer("Conv_1").get_weights()[0])  # fmt: skip
    assert np.allclose(base.get_layer("Conv1").get_weights()[0],
                       tuned.get_layer("Conv1").get_weights()[0])  # fmt: skip

    again = train_all(data, out, weights="none", config=TINY)
    assert [m.status for m in again.models] == ["reused"] * 3
    # A reused model keeps the training figures of the run that trained it.
    assert again.models[2].train_images == report.models[2].train_images > 0
    (out / MODEL_FILES["cnn_stroke_model"]).write_bytes(b"not a model")
    fixed = train_all(data, out, weights="none", config=TINY)
    assert [m.status for m in fixed.models] == ["reused", "reused", "trained"]


def test_weights_path_must_exist(tmp_path: Path):
    from hemiface.train.models import make_base_model

    with pytest.raises(HemifaceError, match="no such weights file"):
        make_base_model(str(tmp_path / "missing.h5"), input_size=64, alpha=0.35)


def test_imagenet_falls_back_explicitly_and_models_have_the_right_shape():
    from hemiface.train.models import build_cnn, make_base_model

    model, source = make_base_model("imagenet", input_size=96, alpha=0.35)
    if source.pretrained:
        assert source.description == "imagenet"
    else:
        assert source.description.startswith("random init (ImageNet weights unavailable")
    assert model.output_shape == (None, 1)
    assert all(not layer.trainable for layer in model.layers
               if layer.name not in ("global_pool", "dropout", "droop_side"))  # fmt: skip
    cnn = build_cnn(64)
    assert cnn.output_shape == (None, 1)
    assert [type(la).__name__ for la in cnn.layers][-3:] == ["Dense", "Dropout", "Dense"]


def test_finetune_recipe_depends_on_pretrained_weights():
    from hemiface.train.config import FULL
    from hemiface.train.trainer import _finetune_recipe

    pretrained = _finetune_recipe(True, FULL)
    assert (pretrained.cut_layer, pretrained.finetune_from) == ("block_15_add", "block_16_expand")
    assert pretrained.batchnorm_momentum is None and not pretrained.mirror_train
    scratch = _finetune_recipe(False, FULL)
    assert scratch.finetune_from == FULL.scratch_finetune_from and scratch.mirror_train
    assert scratch.batchnorm_momentum == FULL.scratch_batchnorm_momentum
    assert "random init" in scratch.describe() and "pretrained" in pretrained.describe()


def test_unfreeze_upper_trains_batchnorm_only_when_asked():
    from hemiface.train.models import make_base_model, unfreeze_upper

    model, _ = make_base_model("none", input_size=64, alpha=0.35)
    unfreeze_upper(model, "block_16_expand")
    assert not model.get_layer("block_16_expand_BN").trainable
    assert model.get_layer("block_16_expand").trainable and not model.get_layer("Conv1").trainable
    unfreeze_upper(model, "block_13_expand", batchnorm_momentum=0.9)
    bn = model.get_layer("block_13_expand_BN")
    assert bn.trainable and bn.momentum == 0.9
    assert not model.get_layer("block_12_expand").trainable


def test_a_reused_base_keeps_the_recorded_pretraining(tmp_path: Path):
    from hemiface.train.trainer import _previous_backbone

    assert _previous_backbone(tmp_path, "unknown") == _backbone(True, "unknown")
    report = tmp_path / REPORT_JSON
    report.write_text(json.dumps({"weights_used": "file w.h5", "backbone_pretrained": False}))
    assert _previous_backbone(tmp_path, "unknown") == _backbone(False, "file w.h5")
    # Reports written before the flag was kept say it in their sentence only.
    report.write_text(json.dumps({"weights_used": "random init (--weights none)"}))
    assert not _previous_backbone(tmp_path, "unknown").pretrained
    report.write_text(json.dumps({"weights_used": "imagenet"}))
    assert _previous_backbone(tmp_path, "unknown").pretrained


def _backbone(pretrained: bool, description: str):  # noqa: ANN202 - keras-side type
    from hemiface.train.models import BackboneWeights

    return BackboneWeights(pretrained, description)
