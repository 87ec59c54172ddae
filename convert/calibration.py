"""Image sets for int8 calibration and verification, preprocessed exactly as the runtime does.

Images are read with `hemiface.runtime.images.read_image` and turned into tensors with
`hemiface.runtime.preprocess.to_tensor`, so the calibration sees the very tensors the
device will feed. A label is the name of a folder on the path that matches one of the
model's labels (case-insensitive), e.g. `val/Left/img.jpg`; images elsewhere are
unlabelled; folders named `masks` are skipped. Sampling is deterministic: evenly spaced
within each class (after a seeded shuffle), classes interleaved.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hemiface.core.folders import read_labelled_folder
from hemiface.runtime.errors import HemifaceError, ImageError
from hemiface.runtime.images import read_image
from hemiface.runtime.manifest import DEFAULT_LABELS, Preprocessing
from hemiface.runtime.preprocess import to_tensor

CALIB_MIN = 100
CALIB_MAX = 500
VERIFY_MAX = 1000
SAMPLING_SEED = 0
SYNTHETIC = "synthetic"
SYNTHETIC_COUNT = 200
MASKS_FOLDER = "masks"


class DatasetError(HemifaceError):
    """A calibration or verification folder is missing, empty or unreadable."""


@dataclass
class ImageSet:
    """Preprocessed images of one folder, ready for Keras and TFLite."""

    description: str  # e.g. "folder data/val (240 of 1200 images, seed 0)"
    paths: list[Path]
    tensors: np.ndarray  # float32 (N, H, W, 3)
    labels: list[int | None]  # index into the model labels, None when unknown
    skipped: list[str] = field(default_factory=list)  # one line per unreadable image

    @property
    def has_labels(self) -> bool:
        return bool(self.labels) and all(label is not None for label in self.labels)

    def fingerprint(self) -> str:
        """sha256 of the tensors and labels: what decides whether cached work is valid."""
        digest = hashlib.sha256(self.tensors.tobytes())
        digest.update(repr(self.labels).encode())
        return digest.hexdigest()


def sample_evenly(
    paths: list[Path], labels: list[int | None], limit: int, seed: int = SAMPLING_SEED
) -> list[int]:
    """Indices of at most `limit` items, spread evenly over the classes, deterministic."""
    if len(paths) <= limit:
        return list(range(len(paths)))
    rng = np.random.default_rng(seed)
    groups: dict[int | None, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(label, []).append(index)
    keys = sorted(groups, key=lambda k: -1 if k is None else k)
    shuffled = {k: [groups[k][i] for i in rng.permutation(len(groups[k]))] for k in keys}
    chosen: list[int] = []
    position = 0
    while len(chosen) < limit:
        for key in keys:
            if position < len(shuffled[key]) and len(chosen) < limit:
                chosen.append(shuffled[key][position])
        position += 1
    return sorted(chosen)


def load_image_set(
    folder: Path,
    spec: Preprocessing,
    limit: int,
    labels: tuple[str, ...] | list[str] = DEFAULT_LABELS,
    purpose: str = "calibration",
    seed: int = SAMPLING_SEED,
) -> ImageSet:
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: {purpose} folder does not exist or is not a folder")
    try:
        files = read_labelled_folder(folder, labels, keep_unlabelled=True)
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot list the {purpose} folder ({exc})") from None
    # hemiface.synth writes segmentation masks beside the faces: never calibrate on them.
    files = [f for f in files if MASKS_FOLDER not in f.path.relative_to(folder).parts]
    if not files:
        raise DatasetError(f"{folder}: no images in the {purpose} folder (.jpg, .png, ...)")
    paths = [f.path for f in files]
    all_labels = [f.index for f in files]
    chosen = sample_evenly(paths, all_labels, limit, seed)
    tensors, kept, kept_labels, skipped = [], [], [], []
    for index in chosen:
        try:
            rgb = read_image(paths[index])
        except ImageError as exc:
            skipped.append(str(exc))
            continue
        tensors.append(to_tensor(rgb, spec)[0])
        kept.append(paths[index])
        kept_labels.append(all_labels[index])
    if not tensors:
        raise DatasetError(
            f"{folder}: none of the {len(chosen)} {purpose} images could be read "
            f"(first: {skipped[0]})"
        )
    description = f"folder {folder} ({len(kept)} of {len(paths)} images, seed {seed})"
    return ImageSet(description, kept, np.stack(tensors), kept_labels, skipped)


def synthetic_folder(workdir: Path, count: int = SYNTHETIC_COUNT, seed: int = 0) -> Path:
    """A labelled synthetic face set written by hemiface.synth into `workdir`."""
    try:
        from hemiface.synth.dataset import generate_dataset
    except ImportError:
        raise DatasetError(
            "--calib synthetic needs hemiface.synth.dataset, which is not installed here; "
            "pass --calib DIR with real images"
        ) from None
    out = Path(workdir) / "synthetic"
    generate_dataset(out, count, seed)
    # Calibrate on the training split: int8 ranges should come from training-like data.
    return out / "train" if (out / "train").is_dir() else out


def resolve_calibration(
    calib: Path | str | None, spec: Preprocessing, workdir: Path
) -> ImageSet | None:
    if calib is None:
        return None
    if str(calib) == SYNTHETIC:
        folder = synthetic_folder(workdir)
        image_set = load_image_set(folder, spec, CALIB_MAX, purpose="calibration")
        image_set.description = f"synthetic (hemiface.synth, seed 0, {len(image_set.paths)} images)"
        return image_set
    return load_image_set(Path(calib), spec, CALIB_MAX, purpose="calibration")
