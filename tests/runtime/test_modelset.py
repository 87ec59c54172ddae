from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hemiface.runtime.backends import Backend
from hemiface.runtime.errors import ManifestError
from hemiface.runtime.manifest import MANIFEST_NAME, load_manifest
from hemiface.runtime.modelset import choose_format, load_model_set

NAMES = ["mobilenetv2_base_model", "mobilenetv2_finetuned_model", "cnn_stroke_model"]


def test_default_is_fastest_verified_format_here(
    model_set_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from hemiface.runtime import device_choice

    # This machine's timings decide, not the manifest's (which makes int8 the faster).
    monkeypatch.setenv(device_choice.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(
        device_choice, "time_interpreter", lambda entry, _: 9.0 if entry.format == "int8" else 4.0
    )
    model_set = load_model_set(model_set_dir)
    assert model_set.format == "float32"
    assert "fastest verified on this machine" in model_set.format_reason
    assert [e.name for e in model_set.entries] == NAMES
    assert model_set.backend_label.startswith("ai-edge-litert")


def test_format_choice_follows_manifest_latency(model_set_dir: Path) -> None:
    manifest = load_manifest(model_set_dir, check_files=False)
    for entry in manifest.models:
        if entry.format == "int8":
            entry.verification.latency_ms = 50.0
    assert choose_format(manifest, NAMES)[0] == "float32"
    for entry in manifest.models:
        if entry.format == "float32":
            entry.verification.passed = False
    assert choose_format(manifest, NAMES)[0] == "int8"
    for entry in manifest.models:
        entry.verification = None
    fmt, reason = choose_format(manifest, NAMES)
    assert fmt == "int8" and "no verification" in reason


@pytest.mark.parametrize("side, label", [("right", "Right"), ("left", "Left")])
def test_int8_and_float32_agree_on_sides(model_set_dir: Path, helpers, side, label) -> None:
    rng = np.random.default_rng(1)
    image = helpers.lateral_image(rng, side, size=300)
    fast = load_model_set(model_set_dir, fmt="int8").predict(image)
    exact = load_model_set(model_set_dir, fmt="float32").predict(image)
    assert exact.format == "float32" and fast.format == "int8"
    assert exact.label == fast.label == label
    assert [m.label for m in exact.models] == [label] * 3
    assert exact.agree == 3 and not exact.disagree
    for a, b in zip(fast.models, exact.models, strict=True):
        # full int8: 256 output levels plus input quantization
        assert abs(a.p - b.p) < 0.03


def test_only_selects_models(model_set_dir: Path) -> None:
    model_set = load_model_set(model_set_dir, only=["cnn_stroke_model"])
    assert model_set.titles == ["CNN"]
    with pytest.raises(ManifestError, match="no model named nope"):
        load_model_set(model_set_dir, only=["nope"])
    with pytest.raises(ManifestError, match="no float16 artifact"):
        load_model_set(model_set_dir, fmt="float16")
    with pytest.raises(ManifestError, match="unknown format"):
        load_model_set(model_set_dir, fmt="fp8")


def test_combine_flags_disagreement_and_uncertainty(model_set_dir: Path) -> None:
    model_set = load_model_set(model_set_dir)
    mixed = model_set.combine([0.9, 0.2, 0.55])
    assert [m.label for m in mixed.models] == ["Right", "Left", "Right"]
    assert [m.uncertain for m in mixed.models] == [False, False, True]
    assert mixed.disagree and mixed.label == "Right" and mixed.agree == 2
    assert mixed.mean_p == pytest.approx(0.55) and mixed.uncertain
    sure = model_set.combine([0.1, 0.2, 0.05])
    assert sure.label == "Left" and sure.agree == 3 and not sure.disagree
    assert json.loads(json.dumps(sure.to_dict()))["models"][0]["title"] == "Base"


def test_sha_mismatch_refused_before_the_interpreter(
    model_set_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "set"
    shutil.copytree(model_set_dir, broken)
    # The first model loaded, in every format: whichever this machine would choose.
    for target in broken.glob("mobilenetv2_base_model.*.tflite"):
        data = bytearray(target.read_bytes())
        data[-1] ^= 0xFF
        target.write_bytes(bytes(data))
    seen: list[bytes] = []
    monkeypatch.setattr(
        Backend, "make_interpreter", lambda self, content, n=None: seen.append(content)
    )
    with pytest.raises(ManifestError, match="sha256 mismatch") as info:
        load_model_set(broken)
    assert "mobilenetv2_base_model." in str(info.value)
    assert seen == []  # no bytes reached an interpreter


def test_newer_schema_refused(model_set_dir: Path, tmp_path: Path) -> None:
    newer = tmp_path / "set"
    shutil.copytree(model_set_dir, newer)
    data = json.loads((newer / MANIFEST_NAME).read_text())
    data["schema_version"] = 99
    (newer / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="upgrade hemiface"):
        load_model_set(newer)


def test_uint8_pixel_fast_path_equals_the_float_path(model_set_dir: Path, helpers) -> None:
    from hemiface.runtime.preprocess import to_tensor

    # int8, input scale 1/255 (calibrated on [0, 1])
    model_set = load_model_set(model_set_dir, fmt="int8")
    assert model_set.pixel_inputs == ["uint8"] * 3
    rng = np.random.default_rng(3)
    for side in ("left", "right"):
        image = helpers.lateral_image(rng, side, size=317)
        fast = model_set.probabilities(image)
        slow = [
            c.predict_one(to_tensor(image, c.entry.preprocessing)) for c in model_set.classifiers
        ]
        assert fast == slow
    float_set = load_model_set(model_set_dir, fmt="float32")
    assert float_set.pixel_inputs == [None] * 3
