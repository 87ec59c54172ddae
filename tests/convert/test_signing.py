"""Signing on the workstation: under the set's lock, after the publish, never over half a
set; `convert --sign-key`, and a convert that leaves an older signature behind says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import fake_model_set, write_ec_key_pair

from hemiface.convert import pipeline, publish
from hemiface.convert.cli import _sign_after_publish
from hemiface.convert.publish import ModelSetBusyError, ModelSetTransaction, refuse_if_busy
from hemiface.convert.signing import sign_published_set
from hemiface.runtime.manifest import MANIFEST_NAME
from hemiface.runtime.signing import (
    CONVERT_CACHE_NAME,
    CONVERT_LOCK_NAME,
    SIGNATURE_NAME,
    _statement,
    signature_status,
    verify_model_set,
)

HEMIFACE = [sys.executable, "-m", "hemiface"]


def test_the_unsigned_names_are_converts_own() -> None:
    assert CONVERT_LOCK_NAME == publish.LOCK_NAME
    assert CONVERT_CACHE_NAME == pipeline.CACHE_NAME


def test_signing_waits_for_no_convert_it_refuses_while_one_publishes(tmp_path: Path) -> None:
    fake_model_set(tmp_path)
    private, _ = write_ec_key_pair(tmp_path.parent, "busy")
    with ModelSetTransaction(tmp_path):
        with pytest.raises(ModelSetBusyError, match="another hemiface convert"):
            sign_published_set(tmp_path, private)
        with pytest.raises(ModelSetBusyError):
            refuse_if_busy(tmp_path)
    assert not (tmp_path / SIGNATURE_NAME).exists()
    refuse_if_busy(tmp_path)  # free again, and the probe leaves no lock file behind
    assert not (tmp_path / CONVERT_LOCK_NAME).exists()


def test_the_signature_never_covers_what_a_killed_convert_left(tmp_path: Path) -> None:
    fake_model_set(tmp_path)
    private, public = write_ec_key_pair(tmp_path.parent, "owner")
    # A convert killed mid-publish: a staging folder, a file moved in under a fresh name
    # that the journal lists and no manifest names.
    staging = tmp_path / ".hemiface-staging-abc123"
    staging.mkdir()
    (staging / "cnn.float32.tflite").write_bytes(b"half")
    orphan = tmp_path / "cnn.int8.0123456789ab.tflite"
    orphan.write_bytes(b"never published")
    (tmp_path / publish.JOURNAL_NAME).write_text(json.dumps({"adding": [orphan.name]}))
    signature, note = sign_published_set(tmp_path, private)
    assert note is not None and "was interrupted" in note
    signed = {r["name"] for r in _statement(signature)["predicate"]["resources"]}
    assert signed == {MANIFEST_NAME, "cnn.int8.tflite"}
    assert verify_model_set(tmp_path, [public]).key == public
    # The lock file held while signing is not among the signed files, nor left behind.
    assert not (tmp_path / CONVERT_LOCK_NAME).exists()


def test_a_convert_after_signing_says_the_signature_no_longer_covers_it(tmp_path: Path) -> None:
    fake_model_set(tmp_path)
    private, public = write_ec_key_pair(tmp_path.parent, "owner")
    notes = _sign_after_publish(tmp_path, private, failed=False)
    assert notes == [f"signed the set with {private}: {tmp_path / SIGNATURE_NAME}"]
    assert _sign_after_publish(tmp_path, None, failed=False) == []  # nothing changed
    fake_model_set(tmp_path, content=b"TFL3 another model")  # what a later convert publishes
    (note,) = _sign_after_publish(tmp_path, None, failed=False)
    assert note.startswith(f"{tmp_path / SIGNATURE_NAME} no longer covers the set")
    assert "cnn.int8.tflite changed" in note
    assert signature_status(tmp_path).state == "does not cover the set"
    assert _sign_after_publish(tmp_path, private, failed=True)[0].startswith("not signed")
    _sign_after_publish(tmp_path, private, failed=False)
    assert verify_model_set(tmp_path, [public]).key == public


def _hemiface(*args: object) -> subprocess.CompletedProcess[str]:
    command = [*HEMIFACE, *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_convert_refuses_at_once_when_the_folder_is_busy_or_the_key_is_missing(tmp_path):
    fake_model_set(tmp_path)
    missing_model = tmp_path / "no-such-model.h5"  # refused before any model is read
    with ModelSetTransaction(tmp_path):
        busy = _hemiface("convert", missing_model, "--out", tmp_path)
    assert busy.returncode == 2
    assert busy.stderr.startswith(f"error: {tmp_path}: another hemiface convert (process")
    assert len(busy.stderr.strip().splitlines()) == 1
    no_key = _hemiface("convert", missing_model, "--out", tmp_path, "--sign-key", "nope.pem")
    assert no_key.returncode == 2
    assert no_key.stderr.strip() == "error: nope.pem: --sign-key names no readable file"


def test_sign_and_verify_commands(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    fake_model_set(folder)
    private, public = write_ec_key_pair(tmp_path, "owner")
    signed = _hemiface("sign", folder, "--key", private)
    assert signed.returncode == 0, signed.stderr
    assert f"signed {folder} with {private}: {folder / SIGNATURE_NAME}" in signed.stdout
    verified = _hemiface("verify", folder, "--key", public)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith(f"{folder}: verified, signed with {public}")
    info = _hemiface("info", "--models", folder, "--json")
    assert json.loads(info.stdout)["signature"]["state"] == "signed, not checked"
    (folder / "notes.txt").write_text("added after signing")
    refused = _hemiface("verify", folder, "--key", public)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"error: {folder / 'notes.txt'}: added since the set was signed (1 difference(s)); "
        "refusing the set"
    )
