"""What a benchmark run works on: the model set, the Keras sources, the labelled images.

The model set's manifest is the list of models and formats. Each model's Keras source is
found in the Keras folder by the manifest's recorded source file name, else by the
model's name with a .keras or .h5 suffix (or a SavedModel folder of that name).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hemiface.core.errors import HemifaceError
from hemiface.core.folders import read_labelled_folder
from hemiface.runtime.manifest import Manifest, load_manifest

KERAS_SUFFIXES = (".keras", ".h5")
# Folders that hold a split's images when a data folder holds several splits.
SPLIT_NAMES = ("test", "testing", "val", "validation")


@dataclass
class LabelledImage:
    path: Path
    label: str  # one of the manifest's labels
    y: int  # 1 for the positive label, 0 for the other


def find_keras_source(keras_dir: Path, name: str, recorded_file: str | None) -> Path | None:
    """The Keras file (or SavedModel folder) for model `name`, or None."""
    keras_dir = Path(keras_dir)
    candidates: list[Path] = []
    if recorded_file:
        candidates.append(keras_dir / Path(recorded_file).name)
    candidates += [keras_dir / f"{name}{suffix}" for suffix in KERAS_SUFFIXES]
    candidates.append(keras_dir / name)
    for path in candidates:
        if path.is_file() or (path.is_dir() and (path / "saved_model.pb").exists()):
            return path
    return None


def keras_sources(manifest: Manifest, keras_dir: Path | None) -> dict[str, Path | None]:
    """Model name -> its Keras source (None when not found or no folder given)."""
    found: dict[str, Path | None] = {}
    for name in manifest.names():
        entry = next(e for e in manifest.models if e.name == name)
        recorded = entry.source.file if entry.source else None
        found[name] = find_keras_source(keras_dir, name, recorded) if keras_dir else None
    return found


def open_model_set(tflite_dir: Path) -> Manifest:
    """The model set's manifest; files are checksummed per row later, so that one bad
    artifact fails its own rows rather than the whole run."""
    return load_manifest(Path(tflite_dir), check_files=False)


def labelled_root(data_dir: Path, labels: list[str]) -> Path:
    """The folder that holds the label folders: a split (test, val, ...) when `data_dir`
    holds one with labelled images, else `data_dir`."""
    root = Path(data_dir)
    if not root.is_dir():
        raise HemifaceError(f"{root}: no such data folder")
    for split in SPLIT_NAMES:
        if (root / split).is_dir() and read_labelled_folder(root / split, labels):
            return root / split
    return root


def labelled_images(
    data_dir: Path, labels: list[str], positive_label: str, limit: int | None = None
) -> list[LabelledImage]:
    """Images under `data_dir` in folders named after the labels (case-insensitive).

    When `data_dir` holds a split folder (test, val, ...) with label folders, that split
    is used. A label folder may sit at any depth (e.g. test/Left/*.jpg). `limit` keeps an
    even share of each label, in sorted order, so that quick runs stay balanced.
    """
    root = labelled_root(data_dir, labels)
    per_label: dict[str, list[LabelledImage]] = {}
    for item in read_labelled_folder(root, labels):
        y = 1 if item.label == positive_label else 0
        per_label.setdefault(str(item.label), []).append(
            LabelledImage(item.path, str(item.label), y)
        )
    if not per_label:
        raise HemifaceError(
            f"{root}: no labelled images (expected image files in folders named "
            f"{' and '.join(labels)})"
        )
    if limit is not None:
        share = max(1, limit // max(1, len(per_label)))
        per_label = {label: items[:share] for label, items in per_label.items()}
    return [item for label in labels for item in per_label.get(label, [])]
