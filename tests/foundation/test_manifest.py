from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support import fake_model_set

from hemiface.runtime.errors import ManifestError
from hemiface.runtime.manifest import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    Manifest,
    OpVersion,
    Quantization,
    Verification,
    load_manifest,
    read_verified_model,
    save_manifest,
)


def make_set(folder: Path, content: bytes = b"TFL3 fake model bytes") -> Manifest:
    return fake_model_set(
        folder,
        content,
        ops=[OpVersion("CONV_2D", 3), OpVersion("FULLY_CONNECTED", 5)],
        verification=Verification(
            dataset="synthetic",
            n_images=10,
            agreement=0.9,
            flips=1,
            mean_abs_dp=0.01,
            p99_abs_dp=0.05,
            max_abs_dp=0.06,
            latency_ms=1.5,
            passed=True,
        ),
    )


def test_round_trip(tmp_path: Path) -> None:
    manifest = make_set(tmp_path)
    loaded = load_manifest(tmp_path)
    assert loaded == manifest
    assert loaded.schema_version == SCHEMA_VERSION
    assert loaded.models[0].input.quantization == Quantization(1 / 255, 0)
    data = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert next(iter(data)) == "schema_version"


def test_saved_manifest_is_readable_by_others(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        make_set(tmp_path)
    finally:
        os.umask(previous)
    assert (tmp_path / MANIFEST_NAME).stat().st_mode & 0o777 == 0o644


def test_entry_semantics(tmp_path: Path) -> None:
    entry = make_set(tmp_path).models[0]
    assert entry.label_for(0.7) == "Right"
    assert entry.label_for(0.3) == "Left"
    assert entry.is_uncertain(0.5) and not entry.is_uncertain(0.9)


def test_verified_bytes(tmp_path: Path) -> None:
    manifest = make_set(tmp_path, b"abc")
    assert read_verified_model(tmp_path, manifest.models[0]) == b"abc"


def _rewrite(folder: Path, edit) -> None:
    path = folder / MANIFEST_NAME
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: (f / MANIFEST_NAME).unlink(), "no model-set manifest"),
        (lambda f: (f / MANIFEST_NAME).write_text('{"schema_version": 1, "mod'), "truncated"),
        (lambda f: (f / MANIFEST_NAME).write_text("[1, 2]"), "JSON object"),
        (
            lambda f: _rewrite(f, lambda d: d.update(schema_version=SCHEMA_VERSION + 1)),
            "upgrade hemiface",
        ),
        (lambda f: _rewrite(f, lambda d: d.pop("schema_version")), "schema_version"),
        (lambda f: _rewrite(f, lambda d: d.update(schema_version=0)), "unknown manifest schema"),
        (
            lambda f: _rewrite(f, lambda d: d["models"][0].update(size_bytes="big")),
            "models[0].size_bytes must be an integer",
        ),
        (
            lambda f: _rewrite(f, lambda d: d["models"][0].pop("sha256")),
            "models[0].sha256 is missing",
        ),
        (
            lambda f: _rewrite(f, lambda d: d["models"][0].update(format="int4")),
            "format must be one of",
        ),
        (
            lambda f: _rewrite(f, lambda d: d["models"][0].update(file="../elsewhere.tflite")),
            "plain name",
        ),
        (lambda f: (f / "cnn.int8.tflite").unlink(), "is missing"),
        (lambda f: (f / "cnn.int8.tflite").write_bytes(b"tampered"), "sha256 mismatch"),
    ],
)
def test_malformed(tmp_path: Path, mutate, message: str) -> None:
    make_set(tmp_path)
    mutate(tmp_path)
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert str(tmp_path) in text  # the error names the file


def test_check_files_off_skips_checksums(tmp_path: Path) -> None:
    make_set(tmp_path)
    (tmp_path / "cnn.int8.tflite").write_bytes(b"tampered")
    manifest = load_manifest(tmp_path, check_files=False)
    with pytest.raises(ManifestError, match="sha256 mismatch"):
        read_verified_model(tmp_path, manifest.models[0])


def test_save_is_atomic_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = make_set(tmp_path)
    before = (tmp_path / MANIFEST_NAME).read_bytes()

    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("hemiface.runtime.manifest.os.replace", boom)
    manifest.models[0].title = "changed"
    with pytest.raises(OSError):
        save_manifest(manifest, tmp_path)
    assert (tmp_path / MANIFEST_NAME).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.int8.tflite", MANIFEST_NAME]
