"""Load a labelled image folder into memory (numpy + OpenCV, TF-free).

DATA is the Keras folder layout, DATA/{train,val,test}/{Left,Right}/*.jpg, as written
by `hemiface synth` or arranged by hand from real photos. When DATA/labels.csv exists
(a synthetic set), each image's droop severity comes with it, for the accuracy-by-
severity table. Images are read as RGB and resized the way Keras `load_img(path,
target_size=...)` does (PIL nearest, i.e. OpenCV INTER_NEAREST_EXACT): the same
preprocessing the runtime reproduces; the model scales them to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hemiface.core.domain import LABELS
from hemiface.core.errors import HemifaceError
from hemiface.core.folders import read_labelled_folder
from hemiface.runtime.images import read_image

SPLITS = ("train", "val", "test")


@dataclass
class ImageSet:
    images: np.ndarray  # (N, H, W, 3) RGB uint8
    labels: np.ndarray  # (N,) float32, 1.0 = "Right" (what the sigmoid scores)
    severity: np.ndarray  # (N,) float32, NaN where unknown
    files: list[str]

    def __len__(self) -> int:
        return len(self.files)

    def subset(self, index: np.ndarray) -> ImageSet:
        return ImageSet(self.images[index], self.labels[index], self.severity[index],
                        [self.files[i] for i in index])  # fmt: skip

    def flipped(self) -> ImageSet:
        """Mirror every image and swap its label (patient's side moves with the flip)."""
        return ImageSet(np.ascontiguousarray(self.images[:, :, ::-1]), 1.0 - self.labels,
                        self.severity, self.files)  # fmt: skip


def _severities(data: Path) -> dict[str, float]:
    if not (data / "labels.csv").is_file():
        return {}
    from hemiface.synth.dataset import read_labels

    return {row.file: row.severity for row in read_labels(data)}


def load_split(data: Path, split: str, size: int, limit: int | None = None,
               seed: int = 0) -> ImageSet:  # fmt: skip
    """All images of DATA/split/{Left,Right}; `limit` keeps a seeded, label-balanced subset."""
    data = Path(data)
    folder = data / split
    found = read_labelled_folder(folder, LABELS) if folder.is_dir() else []
    per_label = [[f.path for f in found if f.index == index] for index in range(len(LABELS))]
    if limit is not None:
        rng = np.random.default_rng([seed, len(split)])
        keep = max(1, limit // 2)
        per_label = [sorted(rng.permutation(np.array(p, dtype=object))[:keep].tolist())
                     if len(p) > keep else p for p in per_label]  # fmt: skip
    files = [p for paths in per_label for p in paths]
    labels = np.array([float(i) for i, paths in enumerate(per_label) for _ in paths], np.float32)
    severity_of = _severities(data)
    images = np.empty((len(files), size, size, 3), np.uint8)
    names: list[str] = []
    for i, path in enumerate(files):
        rgb = read_image(path)
        if rgb.shape[:2] != (size, size):
            rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_NEAREST_EXACT)
        images[i] = rgb
        names.append(path.relative_to(data).as_posix())
    severity = np.array([severity_of.get(n, np.nan) for n in names], np.float32)
    return ImageSet(images, labels, severity, names)


def load_dataset(data: Path, size: int, train_limit: int | None = None,
                 seed: int = 0) -> dict[str, ImageSet]:  # fmt: skip
    """train, val and test splits; val is carved from train (15%) when DATA has none."""
    data = Path(data)
    if not data.is_dir():
        raise HemifaceError(f"{data}: no such folder (make one with `hemiface synth {data}`)")
    sets = {s: load_split(data, s, size, train_limit if s == "train" else None, seed)
            for s in SPLITS}  # fmt: skip
    for split in ("train", "test"):
        counts = [int((sets[split].labels == v).sum()) for v in (0.0, 1.0)]
        if min(counts) == 0:
            raise HemifaceError(
                f"{data / split}: needs images in both Left/ and Right/ (found {counts[0]} "
                f"and {counts[1]})"
            )
    if len(sets["val"]) == 0:
        order = np.random.default_rng(seed).permutation(len(sets["train"]))
        cut = max(2, len(order) * 15 // 100)
        sets["val"] = sets["train"].subset(np.sort(order[:cut]))
        sets["train"] = sets["train"].subset(np.sort(order[cut:]))
    return sets
