"""The labelled image folder: images under folders named after the labels.

A file's label is the nearest folder above it (below the root) whose name is a label,
compared case-insensitively: `data/Left/a.png`, `data/test/left/b.jpg` and
`data/Right/session1/c.png` are labelled; a file with no label folder above it is
unlabelled. Image files are recognised by suffix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hemiface.core.domain import LABELS
from hemiface.core.errors import HemifaceError

# Every format the runtime reads (runtime.image_header): PNG, JPEG, BMP, GIF, WebP, TIFF,
# AVIF, JPEG 2000, PNM/PAM, Sun raster.
IMAGE_SUFFIXES = (
    ".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".gif", ".webp", ".tif", ".tiff",
    ".avif", ".jp2", ".j2k", ".jpf", ".pbm", ".pgm", ".ppm", ".pnm", ".pam", ".sr", ".ras",
)  # fmt: skip


@dataclass(frozen=True)
class LabelledFile:
    path: Path
    index: int | None  # position of the label in the labels asked for; None when unlabelled
    label: str | None  # the label as asked for (not as the folder spells it)


def image_files(folder: Path) -> list[Path]:
    """Image files under `folder` (recursively), sorted, by suffix. A folder that cannot
    be read raises its OSError (with the folder's name) rather than being passed over."""

    def fail(exc: OSError) -> None:
        raise exc

    found = []
    for root, _, files in os.walk(folder, onerror=fail):
        for name in files:
            path = Path(root) / name
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                found.append(path)
    return sorted(found)


def label_of(path: Path, root: Path, labels: tuple[str, ...] | list[str] = LABELS) -> int | None:
    """Index in `labels` of the nearest folder above `path` (below `root`) named as a label."""
    lowered = [label.lower() for label in labels]
    for part in reversed(Path(path).relative_to(root).parts[:-1]):
        if part.lower() in lowered:
            return lowered.index(part.lower())
    return None


def read_labelled_folder(
    path: Path,
    labels: tuple[str, ...] | list[str] = LABELS,
    keep_unlabelled: bool = False,
) -> list[LabelledFile]:
    """The image files under `path`, sorted by path, each with its label; unlabelled files
    are left out unless `keep_unlabelled`. A missing folder is a HemifaceError."""
    root = Path(path)
    if not root.is_dir():
        raise HemifaceError(f"{root}: no such folder")
    found = []
    for file in image_files(root):
        index = label_of(file, root, labels)
        if index is not None or keep_unlabelled:
            found.append(LabelledFile(file, index, None if index is None else labels[index]))
    return found
