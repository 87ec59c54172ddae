"""The manifest loader refuses values the runtime cannot use, naming the field: typos of
key names, labels, threshold, uncertainty band, sizes, non-finite numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import fake_model_set

from hemiface.runtime.errors import ManifestError
from hemiface.runtime.manifest import (
    MANIFEST_NAME,
    load_manifest,
)


def _make_set(folder: Path) -> None:
    fake_model_set(folder)


def _edit_text(folder: Path, old: str, new: str) -> None:
    path = folder / MANIFEST_NAME
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _edit(folder: Path, **changes: object) -> None:
    path = folder / MANIFEST_NAME
    data = json.loads(path.read_text())
    for dotted, value in changes.items():
        target = data["models"][0]
        *parents, last = dotted.split("__")
        for parent in parents:
            target = target[parent]
        target[last] = value
    path.write_text(json.dumps(data))


def _set_top(folder: Path, **values: object) -> None:
    path = folder / MANIFEST_NAME
    path.write_text(json.dumps({**json.loads(path.read_text()), **values}))


CASES = [
    # typos in key names: refused with the field and the nearest known name
    (lambda f: _edit_text(f, '"positive_label"', '"positve_label"'),
     "models[0].positve_label: unknown field; did you mean 'positive_label'?"),
    (lambda f: _edit_text(f, '"threshold"', '"threshhold"'),
     "models[0].threshhold: unknown field; did you mean 'threshold'?"),
    (lambda f: _edit_text(f, '"width"', '"widht"'), "models[0].preprocessing.widht: unknown"),
    (lambda f: _edit_text(f, '"created_by"', '"made_by"'), "made_by: unknown field"),
    (lambda f: _edit_text(f, '"threshold"', '"treshold"'),
     "models[0].treshold: unknown field; did you mean 'threshold'?"),
    (lambda f: _set_top(f, detectors=[{"nmae": "blazeface_short_range"}]),
     "detectors[0].nmae: unknown field; did you mean 'name'?"),
    (lambda f: _set_top(f, fused=[{"outptus": []}]),
     "fused[0].outptus: unknown field; did you mean 'outputs'?"),
    # values
    (lambda f: _edit(f, threshold=7.5), "threshold must be a probability strictly between"),
    (lambda f: _edit_text(f, '"threshold": 0.5', '"threshold": NaN'), "threshold must be"),
    (lambda f: _edit(f, threshold=0), "threshold must be"),
    (lambda f: _edit(f, labels=["Right", "Right"]), "labels must be two different names"),
    (lambda f: _edit(f, labels=["Left", "Right", "Up"]), "labels must be two different names"),
    (lambda f: _edit(f, labels=["Left", ""]), "labels must be two different names"),
    (lambda f: _edit(f, positive_label="Up"), "positive_label must be one of the labels"),
    (lambda f: _edit(f, uncertainty_band=[0.6, 0.4]), "uncertainty_band must be [low, high]"),
    (lambda f: _edit(f, uncertainty_band=[-0.1, 0.6]), "uncertainty_band must be"),
    (lambda f: _edit(f, uncertainty_band=[0.4]), "uncertainty_band must be"),
    (lambda f: _edit_text(f, "0.4,", "Infinity,"), "uncertainty_band must be"),
    (lambda f: _edit(f, preprocessing__width=0), "preprocessing.width must be between 1"),
    (lambda f: _edit(f, preprocessing__height=10**6), "preprocessing.height must be between"),
    (lambda f: _edit(f, preprocessing__scale=0), "preprocessing.scale must be a non-zero"),
    (lambda f: _edit(f, size_bytes=0), "size_bytes must be positive"),
    (lambda f: _edit(f, input__shape=[1, 0, 224, 3]), "input.shape must list positive sizes"),
    (lambda f: _edit(f, output__quantization__scale=0), "output.quantization.scale must be"),
    (lambda f: _edit(f, sha256="abc"), "sha256 must be 64 lowercase hex digits"),
    (lambda f: _edit(f, name=" "), "name must not be empty"),
    (lambda f: _edit(f, labels="Left,Right"), "models[0].labels must be a list"),
    (lambda f: _edit(f, threshold=10**400), "models[0].threshold is out of range"),
    (lambda f: (f / MANIFEST_NAME).write_text("[" * 100_000), "nested too deeply"),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "message"), CASES)
def test_bad_values_are_refused_naming_the_field(tmp_path: Path, mutate, message: str) -> None:
    _make_set(tmp_path)
    mutate(tmp_path)
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path)
    text = str(info.value)
    assert message in text
    assert text.startswith(str(tmp_path / MANIFEST_NAME)) and "\n" not in text


def test_schema_errors_say_which_model(tmp_path: Path) -> None:
    _make_set(tmp_path)
    _edit_text(tmp_path, '"threshold"', '"threshhold"')
    with pytest.raises(ManifestError, match=r"\(model 'cnn_stroke_model', int8\)$"):
        load_manifest(tmp_path)


def test_a_set_with_every_default_still_loads(tmp_path: Path) -> None:
    _make_set(tmp_path)
    entry = load_manifest(tmp_path).models[0]
    assert entry.labels == ["Left", "Right"] and entry.threshold == 0.5
