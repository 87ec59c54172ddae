"""Signed model sets: a signed set passes; every single change since signing is refused in
one line naming the file; hemiface's signatures and the model_signing CLI's interoperate."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import write_ec_key_pair

from hemiface.runtime.errors import ManifestError
from hemiface.runtime.manifest import MANIFEST_NAME, load_manifest, save_manifest
from hemiface.runtime.options import ModelSetOptions
from hemiface.runtime.signing import (
    SIGNATURE_NAME,
    SignatureError,
    check_status,
    sign_model_set,
    signature_status,
    verify_model_set,
)

HEMIFACE = [sys.executable, "-m", "hemiface"]
MODEL_SIGNING = [sys.executable, "-m", "model_signing"]


def run(command: list[object], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    private, public = write_ec_key_pair(folder, "owner")
    other_private, other_public = write_ec_key_pair(folder, "other")
    return {"private": private, "public": public, "other": other_private, "other_pub": other_public}


@pytest.fixture
def signed_set(fused_set, keys, tmp_path: Path) -> Path:
    """A copy of the fused test set (classifiers, fused artifacts, BlazeFace, manifest),
    signed with the owner's key."""
    _, source = fused_set
    folder = tmp_path / "set"
    shutil.copytree(source, folder)
    sign_model_set(folder, keys["private"])
    return folder


def _files_of_kind(folder: Path) -> dict[str, Path]:
    manifest = load_manifest(folder, check_files=False)
    assert manifest.fused and manifest.detectors, "the fixture set must hold every file kind"
    return {
        "classifier": folder / manifest.models[0].file,
        "fused": folder / manifest.fused[0].file,
        "detector": folder / manifest.detectors[0].file,
        "manifest": folder / MANIFEST_NAME,
    }


def _flip_byte(path: Path) -> None:
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    path.write_bytes(bytes(content))


def test_a_signed_set_passes_and_pins_its_manifest(signed_set: Path, keys) -> None:
    verified = verify_model_set(signed_set, [keys["other_pub"], keys["public"]])
    assert verified.key == keys["public"]
    manifest_bytes = (signed_set / MANIFEST_NAME).read_bytes()
    assert verified.manifest_sha256 == hashlib.sha256(manifest_bytes).hexdigest()
    options = ModelSetOptions(signed_set, fmt="float32", trusted_keys=(keys["public"],))
    assert options.open().format == "float32"
    assert options.open_detector().name == "blazeface"
    assert check_status(signed_set, [keys["public"]]).state == "verified"


@pytest.mark.parametrize("kind", ["classifier", "fused", "detector", "manifest"])
def test_a_byte_flipped_in_any_file_is_refused_naming_it(signed_set: Path, keys, kind) -> None:
    target = _files_of_kind(signed_set)[kind]
    _flip_byte(target)
    with pytest.raises(SignatureError) as caught:
        verify_model_set(signed_set, [keys["public"]])
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{target}: changed since the set was signed"), message


def test_a_file_added_or_removed_is_refused_naming_it(signed_set: Path, keys) -> None:
    (signed_set / "extra.tflite").write_bytes(b"TFL3 not signed")
    with pytest.raises(SignatureError, match=r"extra\.tflite: added since the set was signed"):
        verify_model_set(signed_set, [keys["public"]])
    (signed_set / "extra.tflite").unlink()
    removed = _files_of_kind(signed_set)["classifier"]
    removed.unlink()
    with pytest.raises(SignatureError, match=f"{removed}: removed since the set was signed"):
        verify_model_set(signed_set, [keys["public"]])


def test_a_manifest_rewritten_to_match_a_swapped_model_is_refused(signed_set: Path, keys) -> None:
    # The attack the checksums alone do not stop: a new model and a manifest that vouches
    # for it. The manifest on its own passes its checks; the signature does not.
    manifest = load_manifest(signed_set, check_files=False)
    entry = manifest.models[0]
    path = signed_set / entry.file
    _flip_byte(path)
    entry.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    save_manifest(manifest, signed_set)
    load_manifest(signed_set)  # consistent: the checksums are fooled
    with pytest.raises(SignatureError) as caught:
        verify_model_set(signed_set, [keys["public"]])
    assert str(caught.value).startswith(f"{signed_set / MANIFEST_NAME}: changed since")
    assert "2 difference(s)" in str(caught.value)


def test_another_keys_signature_and_a_truncated_one_are_refused(signed_set: Path, keys) -> None:
    sign_model_set(signed_set, keys["other"])
    with pytest.raises(SignatureError, match="signed by a key that is not trusted here"):
        verify_model_set(signed_set, [keys["public"]])
    signature = signed_set / SIGNATURE_NAME
    content = signature.read_bytes()
    signature.write_bytes(content[: len(content) // 2])
    with pytest.raises(SignatureError, match=f"{signature}: not a model-signing signature"):
        verify_model_set(signed_set, [keys["other_pub"]])


def test_an_unsigned_set_is_refused_when_a_key_is_trusted(fused_set, keys) -> None:
    _, folder = fused_set
    with pytest.raises(SignatureError, match="unsigned and a trusted key is set"):
        verify_model_set(folder, [keys["public"]])
    assert signature_status(folder).state == "unsigned"


def test_the_manifest_swapped_after_the_check_is_not_loaded(signed_set: Path, keys) -> None:
    # Checked once at load: a manifest replaced between the check and the load is refused.
    options = ModelSetOptions(signed_set, fmt="float32", trusted_keys=(keys["public"],))
    assert options.check_signature() is not None
    manifest = load_manifest(signed_set, check_files=False)
    manifest.models[0].title = "swapped"
    save_manifest(manifest, signed_set)
    with pytest.raises(ManifestError, match="changed after its signature was checked"):
        options.open()
    with pytest.raises(ManifestError, match="changed after its signature was checked"):
        options.open_detector()


def test_trusted_keys_folder_in_the_config_applies(signed_set, keys, tmp_path, monkeypatch):
    config = tmp_path / "config"
    (config / "hemiface" / "trusted-keys").mkdir(parents=True)
    shutil.copy(keys["other_pub"], config / "hemiface" / "trusted-keys" / "other.pem")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    with pytest.raises(SignatureError, match="not trusted here"):
        ModelSetOptions(signed_set, fmt="float32").open()
    shutil.copy(keys["public"], config / "hemiface" / "trusted-keys" / "owner.pub")
    assert ModelSetOptions(signed_set, fmt="float32").open().format == "float32"


def test_info_says_unsigned_signed_not_checked_or_stale(signed_set: Path) -> None:
    assert signature_status(signed_set).state == "signed, not checked"
    _flip_byte(_files_of_kind(signed_set)["fused"])
    status = signature_status(signed_set)
    assert status.state == "does not cover the set"
    assert "changed since signing" in status.detail


def test_predict_refuses_in_one_line_and_runs_when_signed(signed_set, keys, tmp_path) -> None:
    import cv2
    import numpy as np

    image = tmp_path / "face.png"
    cv2.imwrite(str(image), np.full((64, 64, 3), 128, np.uint8))
    good = run([*HEMIFACE, "predict", image, "-m", signed_set, "--trusted-key", keys["public"]])
    assert good.returncode == 0, good.stderr
    assert f"signature verified with {keys['public']}" in good.stdout
    bad = run([*HEMIFACE, "predict", image, "-m", signed_set, "--trusted-key", keys["other_pub"]])
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"error: {signed_set / SIGNATURE_NAME}: signed by a key that is not trusted here "
        f"(tried {keys['other_pub']})"
    ]


def test_hemiface_signatures_verify_with_the_model_signing_cli(signed_set, keys) -> None:
    result = run(
        [
            *MODEL_SIGNING,
            "verify",
            "key",
            signed_set,
            "--signature",
            signed_set / SIGNATURE_NAME,
            "--public_key",
            keys["public"],
        ]  # fmt: skip
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification succeeded" in result.stdout + result.stderr


def test_sets_signed_with_the_model_signing_cli_are_accepted(fused_set, keys, tmp_path) -> None:
    _, source = fused_set
    folder = tmp_path / "cli-signed"
    shutil.copytree(source, folder)
    result = run(
        [
            *MODEL_SIGNING,
            "sign",
            "key",
            folder,
            "--signature",
            folder / SIGNATURE_NAME,
            "--private_key",
            keys["private"],
        ]  # fmt: skip
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert verify_model_set(folder, [keys["public"]]).key == keys["public"]
    statement = (folder / SIGNATURE_NAME).read_text()
    assert json.loads(statement)["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
