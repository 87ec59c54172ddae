"""The model-set manifest, `hemiface.json`: typed, versioned, checked on load.

A model set is a folder holding .tflite files and this manifest. convert/ writes it;
the runtime trusts nothing in the folder that the manifest does not vouch for: every
model file's sha256 is checked before its bytes reach an interpreter
(`read_verified_model`).

Schema changes bump `SCHEMA_VERSION`; a manifest from a newer schema is refused with a
message that says to upgrade, never half-read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hemiface.core.checksum import read_at_most, sha256_file
from hemiface.runtime.errors import ManifestError
from hemiface.runtime.manifest_checks import SchemaError, check_semantics, from_json, which_model
from hemiface.runtime.manifest_schema import (
    DEFAULT_LABELS,
    FORMATS,
    MANIFEST_NAME,
    MAX_INPUT_SIDE,
    MAX_MANIFEST_BYTES,
    READ_ATTEMPTS,
    SCHEMA_VERSION,
    SIDE_CONVENTION,
    ConverterInfo,
    DetectorEntry,
    DetectorSource,
    FusedEntry,
    FusedOutput,
    LoadCheck,
    Manifest,
    ModelEntry,
    OpVersion,
    Preprocessing,
    Quantization,
    SourceModel,
    TensorSpec,
    Verification,
)

# The schema's names are re-exported: callers import them from here.
__all__ = [
    "sha256_file",
    "manifest_path",
    "manifest_stamp",
    "read_consistently",
    "load_manifest",
    "check_model_file",
    "save_manifest",
    "atomic_write_bytes",
    "manifest_to_dict",
    "read_verified_model",
    "ConverterInfo",
    "DEFAULT_LABELS",
    "DetectorEntry",
    "DetectorSource",
    "FORMATS",
    "FusedEntry",
    "FusedOutput",
    "LoadCheck",
    "MANIFEST_NAME",
    "MAX_INPUT_SIDE",
    "MAX_MANIFEST_BYTES",
    "Manifest",
    "ModelEntry",
    "OpVersion",
    "Preprocessing",
    "Quantization",
    "READ_ATTEMPTS",
    "SCHEMA_VERSION",
    "SIDE_CONVENTION",
    "SourceModel",
    "TensorSpec",
    "Verification",
]

T = TypeVar("T")
# A TFLite model is one flatbuffer, which cannot exceed 2 GiB.
MAX_MODEL_BYTES = 2 << 30


def manifest_path(folder_or_file: Path) -> Path:
    path = Path(folder_or_file)
    return path / MANIFEST_NAME if path.is_dir() else path


def manifest_stamp(folder_or_file: Path) -> tuple[int, int, int] | None:
    """Identifies one version of the manifest on disk: a publish replaces the file (a new
    inode), so a different stamp means a different set. None when there is none."""
    try:
        info = os.stat(manifest_path(folder_or_file))
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


def read_consistently(folder_or_file: Path, read: Callable[[], T]) -> T:
    """`read()` the model set; when it fails on a file while a new set was published in
    between (the manifest changed under us), read the new set instead.

    Publishing never changes a file the live manifest names, so a failure with an
    unchanged manifest is a real fault, raised as it is.
    """
    for attempt in range(READ_ATTEMPTS):
        stamp = manifest_stamp(folder_or_file)
        try:
            return read()
        except ManifestError:
            if attempt == READ_ATTEMPTS - 1 or manifest_stamp(folder_or_file) == stamp:
                raise
    raise AssertionError("unreachable")


def load_manifest(
    folder_or_file: Path, check_files: bool = True, pinned_sha256: str | None = None
) -> Manifest:
    """Read, validate and (by default) checksum every model file of a model set.

    Raises ManifestError naming the file and what is wrong: missing, not JSON (or
    truncated), a newer or unknown schema version, a field of the wrong type, a missing
    model file or a sha256 mismatch. With `check_files`, the manifest and the files are
    one version of the set (see `read_consistently`). With `pinned_sha256` (the manifest's
    sha256 as a checked signature lists it), any other manifest is refused.
    """
    if check_files:
        return read_consistently(
            folder_or_file, lambda: _load_manifest(folder_or_file, True, pinned_sha256)
        )
    return _load_manifest(folder_or_file, False, pinned_sha256)


def _load_manifest(
    folder_or_file: Path, check_files: bool, pinned_sha256: str | None = None
) -> Manifest:
    path = manifest_path(folder_or_file)
    if not path.exists():
        raise ManifestError(f"{path}: no model-set manifest here (expected {MANIFEST_NAME})")
    try:
        if not path.is_file():
            raise ManifestError(f"{path}: the manifest is not a file")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(
                f"{path}: {path.stat().st_size:,} bytes is too large for a manifest "
                f"(at most {MAX_MANIFEST_BYTES:,})"
            )
        with open(path, "rb") as handle:  # bounded: the file may grow after the stat
            content = read_at_most(handle, MAX_MANIFEST_BYTES)
        text = content.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({exc})") from None
    if pinned_sha256 is not None and hashlib.sha256(content).hexdigest() != pinned_sha256:
        raise ManifestError(
            f"{path}: the manifest changed after its signature was checked; refusing the set"
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"{path}: not valid JSON, perhaps truncated (line {exc.lineno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise ManifestError(f"{path}: not a manifest (JSON nested too deeply)") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: expected a JSON object at the top level")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ManifestError(f"{path}: no integer schema_version; is this a hemiface manifest?")
    if version > SCHEMA_VERSION:
        raise ManifestError(
            f"{path}: written for manifest schema {version}, this hemiface reads up to "
            f"{SCHEMA_VERSION}: upgrade hemiface"
        )
    if version < 1:
        raise ManifestError(f"{path}: unknown manifest schema version {version}")
    try:
        manifest: Manifest = from_json(Manifest, data, "")
    except SchemaError as exc:
        raise ManifestError(f"{path}: {exc}{which_model(str(exc), data)}") from None
    check_semantics(manifest, path)
    if check_files:
        for entry in manifest.models:
            check_model_file(path.parent, entry)
        for detector in manifest.detectors:
            check_model_file(path.parent, detector)
        for fused in manifest.fused:
            check_model_file(path.parent, fused)
    return manifest


def check_model_file(folder: Path, entry: ModelEntry | DetectorEntry | FusedEntry) -> bytes:
    """The model's bytes, after checking they exist and match the manifest's sha256.

    Returning the bytes that were hashed (rather than a path) means the interpreter loads
    exactly what was checked.
    """
    path = Path(folder) / entry.file
    try:
        content = _read_model_bytes(path)
    except FileNotFoundError:
        raise ManifestError(
            f"{path}: model file named in the manifest is missing ({entry.name}, {entry.format})"
        ) from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read model file ({exc.strerror or exc})") from None
    actual = hashlib.sha256(content).hexdigest()
    if actual != entry.sha256:
        raise ManifestError(
            f"{path}: sha256 mismatch, refusing to load (manifest {entry.sha256[:12]}…, "
            f"file {actual[:12]}…): the file changed after conversion"
        )
    return content


def _read_model_bytes(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_MODEL_BYTES.

    Opened without blocking and checked on the open file: a FIFO (which would block for
    ever) or a device such as /dev/zero (which never ends) is refused unread.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ManifestError(f"{path}: not a regular file; refusing to read it")
        if info.st_size > MAX_MODEL_BYTES:
            raise ManifestError(
                f"{path}: {info.st_size:,} bytes is more than a TFLite model can hold; "
                "refusing to read it"
            )
        return read_at_most(handle, MAX_MODEL_BYTES)


# `read_verified_model` is the name the runtime uses when it loads a model.
read_verified_model = check_model_file


def save_manifest(manifest: Manifest, folder: Path) -> Path:
    """Write the manifest atomically (temporary file in the same folder, then rename)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MANIFEST_NAME
    text = json.dumps(manifest_to_dict(manifest), indent=2, sort_keys=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def atomic_write_bytes(path: Path, content: bytes) -> None:
    """Write `content` to `path` so that readers see the old file or the new, never half."""
    path = Path(path)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as tmp:
            tmp.write(content)
            tmp.flush()
            os.fsync(tmp.fileno())
        # mkstemp makes the file 0600; give it the mode a plain open() would have, so that
        # another user (the Pi's camera service, say) can read the model set.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def manifest_to_dict(manifest: Manifest) -> dict[str, Any]:
    data = dataclasses.asdict(manifest)
    # schema_version first, so a person reading the file sees it at once.
    return {"schema_version": data.pop("schema_version"), **data}
