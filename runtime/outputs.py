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
        for path in paths:
            self.add(path)

    def add(self, path: Path) -> None:
        identity = _identity(path)
        if identity is not None:
            self._ids.add(identity)
        self._paths.add(_resolved(path))

    def add_model_set(self, folder: Path) -> None:
        """The manifest and every file it names (read without checksums: names only)."""
        folder = Path(folder)
        self.add(folder / MANIFEST_NAME)
        try:
            manifest = load_manifest(folder, check_files=False)
        except HemifaceError:
            return
        for entry in manifest.models:
            self.add(folder / entry.file)

    def overwrites(self, path: Path) -> bool:
        identity = _identity(path)
        return (identity is not None and identity in self._ids) or _resolved(path) in self._paths


def check_output(path: Path, inputs: InputFiles, option: str) -> None:
    """OutputPathError unless `path` can be written without touching an input: not an
    input, not a folder, in a folder that exists."""
    path = Path(path)
    if inputs.overwrites(path):
        raise OutputPathError(f"{path}: {option} would overwrite an input; choose another file")
    if path.is_dir():
        raise OutputPathError(f"{path}: {option} names a folder; give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise OutputPathError(f"{path}: {option}: the folder {parent} does not exist")
