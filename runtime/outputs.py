"""Output paths that never destroy an input: figures and recordings.

`--figure` and `--record` name files the command writes. Written over an input image, a
video being read or a model-set file, they would destroy it (a recording truncates its
file when it opens it). `InputFiles` remembers the inputs by identity (device and inode,
so another spelling of the same path, a hard link or a symlink is caught too) and by
resolved path (for inputs that do not exist yet).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.manifest import MANIFEST_NAME, load_manifest
from hemiface.runtime.signing import SIGNATURE_NAME


class OutputPathError(HemifaceError):
    """An output path would overwrite an input or cannot be written."""


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def _resolved(path: Path) -> str:
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return os.path.abspath(path)


class InputFiles:
    """The files a command reads; `overwrites(path)` says whether writing `path` hits one."""

    def __init__(self, paths: Iterable[Path] = ()) -> None:
        self._ids: set[tuple[int, int]] = set()
        self._paths: set[str] = set()
        self._folders: set[tuple[int, int]] = set()  # model-set folders: nothing lands there
        self._folder_paths: set[str] = set()
        for path in paths:
            self.add(path)

    def add(self, path: Path) -> None:
        identity = _identity(path)
        if identity is not None:
            self._ids.add(identity)
        self._paths.add(_resolved(path))

    def add_model_set(self, folder: Path) -> None:
        """The set's folder, so that nothing is written into it (a file added to a signed
        set breaks its signature), its manifest, signature and every file the manifest
        names: classifiers, fused artifacts, detectors (read without checksums: names)."""
        folder = Path(folder)
        folder_id = _identity(folder)
        if folder_id is not None:
            self._folders.add(folder_id)
        self._folder_paths.add(_resolved(folder))
        self.add(folder / MANIFEST_NAME)
        self.add(folder / SIGNATURE_NAME)
        try:
            manifest = load_manifest(folder, check_files=False)
        except HemifaceError:
            return
        files = [e.file for e in manifest.models] + [e.file for e in manifest.fused]
        for file in files + [e.file for e in manifest.detectors]:
            self.add(folder / file)

    def overwrites(self, path: Path) -> bool:
        identity = _identity(path)
        if (identity is not None and identity in self._ids) or _resolved(path) in self._paths:
            return True
        # Whatever the path's form (a symlink to a set's file, a path through a link to the
        # set's folder): where it would land is the set's folder.
        landing = Path(_resolved(path)).parent
        landing_id = _identity(landing)
        return (landing_id is not None and landing_id in self._folders) or str(
            landing
        ) in self._folder_paths


def check_output(path: Path, inputs: InputFiles, option: str) -> None:
    """OutputPathError unless `path` can be written without touching an input: not an
    input, not a folder, in a folder that exists."""
    path = Path(path)
    if inputs.overwrites(path):
        raise OutputPathError(
            f"{path}: {option} would overwrite an input or write into the model set; "
            "choose another file"
        )
    if path.is_dir():
        raise OutputPathError(f"{path}: {option} names a folder; give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise OutputPathError(f"{path}: {option}: the folder {parent} does not exist")
