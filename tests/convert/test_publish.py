"""Publishing a model set as one transaction, in process: names, garbage, lock, recovery."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from hemiface.convert import publish
from hemiface.convert.pipeline import ConvertSettings, convert_models
from hemiface.convert.publish import (
    JOURNAL_NAME,
    LOCK_NAME,
    ModelSetBusyError,
    ModelSetTransaction,
    artifact_files,
)
from hemiface.runtime.errors import ManifestError
from hemiface.runtime.manifest import (
    MANIFEST_NAME,
    check_model_file,
    load_manifest,
    read_consistently,
)
from hemiface.runtime.modelset import load_model_set

FORMATS = ["float32", "float16"]


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    """The tiny model with other weights, saved under the same file name (so: same name)."""
    import keras

    folder = tmp_path_factory.mktemp("other")
    keras.utils.set_random_seed(1)
    model = keras.models.load_model(models_dir / "tiny.keras")
    for weight in model.weights:
        weight.assign(weight.numpy() * 0.5 + 0.01)
    model.save(folder / "tiny.keras")
    return folder / "tiny.keras"


def _set_of(folder: Path) -> set[tuple[str, str, str]]:
    return {(e.name, e.format, e.sha256) for e in load_manifest(folder).models}


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_new_version_gets_new_names_and_the_old_files_go(models_dir, other_model, tmp_path):
    old = convert_models([models_dir / "tiny.keras"], tmp_path, ConvertSettings(formats=FORMATS))
    assert [row.file for row in old.rows] == ["tiny.float32.tflite", "tiny.float16.tflite"]
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "mine.int8.tflite").write_bytes(b"a user's own file")
    new = convert_models([other_model], tmp_path, ConvertSettings(formats=FORMATS))
    for before, after in zip(old.rows, new.rows, strict=True):
        assert after.sha256 != before.sha256
        # never the name the live manifest used for other bytes
        assert after.file == f"tiny.{after.format}.{after.sha256[:12]}.tflite"
    manifest = load_manifest(tmp_path)
    detectors = {d.file for d in manifest.detectors}  # the face detector, when installed
    assert set(artifact_files(manifest)) == {row.file for row in new.rows} | detectors
    assert _listing(tmp_path) == sorted(
        [MANIFEST_NAME, ".hemiface-convert-cache.json", "notes.txt", "mine.int8.tflite"]
        + [row.file for row in new.rows]
        + sorted(detectors)
    )  # the old artifacts are gone, the user's files stay, no lock, journal or staging
    third = convert_models([models_dir / "tiny.keras"], tmp_path, ConvertSettings(formats=FORMATS))
    assert [row.file for row in third.rows] == ["tiny.float32.tflite", "tiny.float16.tflite"]
    assert [row.sha256 for row in third.rows] == [row.sha256 for row in old.rows]
    assert load_model_set(tmp_path, "float32").entries[0].sha256 == old.rows[0].sha256


def test_a_second_convert_into_a_locked_set_refuses_in_one_line(models_dir, tmp_path):
    convert_models([models_dir / "tiny.keras"], tmp_path, ConvertSettings(formats=["float32"]))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with ModelSetTransaction(tmp_path):
        with pytest.raises(ModelSetBusyError) as info:
            convert_models(
                [models_dir / "tiny.keras"], tmp_path, ConvertSettings(formats=["float16"])
            )
    message = str(info.value)
    assert "another hemiface convert" in message and f"process {os.getpid()}" in message
    assert str(tmp_path) in message and "\n" not in message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    # The lock is gone with the holder: the next convert runs and merges, keeping float32.
    convert_models([models_dir / "tiny.keras"], tmp_path, ConvertSettings(formats=["float16"]))
    assert sorted(load_manifest(tmp_path).formats_of("tiny")) == ["float16", "float32"]
    assert LOCK_NAME not in _listing(tmp_path)


def test_a_failed_publish_leaves_the_old_set_whole(models_dir, other_model, tmp_path, monkeypatch):
    convert_models([models_dir / "tiny.keras"], tmp_path, ConvertSettings(formats=FORMATS))
    old = _set_of(tmp_path)
    listing = _listing(tmp_path)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    # The new files are moved in, then writing the manifest fails.
    monkeypatch.setattr(publish, "save_manifest", disk_full)
    with pytest.raises(OSError):
        convert_models([other_model], tmp_path, ConvertSettings(formats=FORMATS))
    assert _set_of(tmp_path) == old
    assert _listing(tmp_path) == listing  # what was moved in was taken back


def test_what_a_killed_run_left_is_cleaned_by_the_next(models_dir, other_model, tmp_path):
    first = convert_models([models_dir / "tiny.keras"], tmp_path, ConvertSettings(formats=FORMATS))
    # What a run killed mid-publish leaves: a staging folder, a temporary manifest, a new
    # artifact moved in under a fresh name, and the journal that lists it.
    staging = tmp_path / ".hemiface-staging-abc123"
    staging.mkdir()
    (staging / "tiny.float32.tflite").write_bytes(b"half")
    (tmp_path / f".{MANIFEST_NAME}.x1y2.tmp").write_text("{")
    orphan = tmp_path / "tiny.float32.0123456789ab.tflite"
    orphan.write_bytes(b"new bytes, never published")
    (tmp_path / JOURNAL_NAME).write_text(json.dumps({"adding": [orphan.name], "removing": []}))
    (tmp_path / LOCK_NAME).write_text("12345\n")  # the dead writer's (unlocked) lock file
    assert _set_of(tmp_path) == {(r.name, r.format, r.sha256) for r in first.rows}
    second = convert_models([other_model], tmp_path, ConvertSettings(formats=FORMATS))
    assert any("was interrupted" in note for note in second.notes)
    detectors = [d.file for d in load_manifest(tmp_path).detectors]
    assert _listing(tmp_path) == sorted(
        [MANIFEST_NAME, ".hemiface-convert-cache.json"]
        + [row.file for row in second.rows]
        + detectors
    )


def test_a_journal_after_the_swap_deletes_what_only_the_old_manifest_named(
    models_dir, other_model, tmp_path
):
    old = convert_models(
        [models_dir / "tiny.keras"], tmp_path, ConvertSettings(formats=["float32"])
    )
    new = convert_models([other_model], tmp_path / "ref", ConvertSettings(formats=["float32"]))
    # A run killed after swapping the manifest, before deleting the old file.
    moved = tmp_path / "tiny.float32.ffffffffffff.tflite"
    moved.write_bytes((tmp_path / "ref" / new.rows[0].file).read_bytes())
    data = json.loads((tmp_path / MANIFEST_NAME).read_text())
    data["models"][0].update(file=moved.name, sha256=new.rows[0].sha256)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(data))
    (tmp_path / JOURNAL_NAME).write_text(
        json.dumps({"adding": [moved.name], "removing": [old.rows[0].file]})
    )
    with ModelSetTransaction(tmp_path) as transaction:
        assert transaction.notes and "removed 1 model file" in transaction.notes[0]
    assert not (tmp_path / old.rows[0].file).exists() and moved.exists()
    assert _set_of(tmp_path) == {("tiny", "float32", new.rows[0].sha256)}


def test_a_reader_that_meets_a_publish_reads_the_new_set(models_dir, other_model, tmp_path):
    convert_models([models_dir / "tiny.keras"], tmp_path, ConvertSettings(formats=["float32"]))
    new = (
        convert_models([other_model], tmp_path / "ref", ConvertSettings(formats=["float32"]))
        .rows[0]
        .sha256
    )
    attempts = []

    def read() -> bytes:
        manifest = load_manifest(tmp_path, check_files=False)
        attempts.append(manifest.models[0].sha256)
        if len(attempts) == 1:  # a publish lands between reading the manifest and the file
            convert_models([other_model], tmp_path, ConvertSettings(formats=["float32"]))
        return check_model_file(tmp_path, manifest.models[0])

    content = read_consistently(tmp_path, read)
    assert len(attempts) == 2 and attempts[1] == new != attempts[0]
    assert hashlib.sha256(content).hexdigest() == new
    # With the manifest unchanged, a missing file is a real fault: raised at once.
    stale = load_manifest(tmp_path, check_files=False).models[0]
    (tmp_path / stale.file).unlink()
    with pytest.raises(ManifestError, match="is missing"):
        read_consistently(tmp_path, lambda: check_model_file(tmp_path, stale))


def test_names_and_folders_with_markup_print_as_they_are(models_dir, tmp_path):
    from typer.testing import CliRunner

    from hemiface.cli import app

    model = tmp_path / "[left]tiny.keras"
    model.write_bytes((models_dir / "tiny.keras").read_bytes())
    out = tmp_path / "set[" / "x]"  # a path that holds "[/x]"
    result = CliRunner().invoke(app, ["convert", str(model), "--out", str(out), "-f", "float32"])
    assert result.exit_code == 0, result.output
    assert "[left]tiny" in result.stdout and f"manifest: {out / MANIFEST_NAME}" in result.stdout
    assert "[/x]" in str(out)
