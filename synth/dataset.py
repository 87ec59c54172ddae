"""Write a labelled synthetic data set in the Keras folder layout.

    OUT/{train,val,test}/{Left,Right}/face_000123.jpg      the images (JPEG quality 60-95)
    OUT/masks/{train,val,test}/{Left,Right}/face_000123.png the droop masks (1-bit PNG,
                                                            decoded as 0/255)
    OUT/labels.csv                                          one row per image
    OUT/synth.json                                          the settings and the summary

Image i is drawn from its own generator, seeded with (seed, i), so a data set is fully
determined by (count, seed, size, split) and any image can be re-rendered alone.
Labels are balanced within every split.
"""

from __future__ import annotations

import contextlib
import csv
import json
import multiprocessing
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from hemiface.core.domain import LABELS
from hemiface.core.errors import HemifaceError
from hemiface.synth.faces import SynthFace, render_face

SPLITS = ("train", "val", "test")
# Severity of every generated face: from subtle (a pixel or two of mouth-corner drop on a
# 224 image) to marked. Zero is left out: a face without droop has no side.
SEVERITY_RANGE = (0.1, 1.0)
LABELS_CSV = "labels.csv"
SETTINGS_JSON = "synth.json"
GENERATOR_VERSION = 1
LANDMARK_NAMES = (
    "image_left_eye_outer",
    "image_left_eye_inner",
    "image_right_eye_inner",
    "image_right_eye_outer",
    "image_left_eye_top",
    "image_left_eye_bottom",
    "image_right_eye_top",
    "image_right_eye_bottom",
    "image_left_brow_inner",
    "image_left_brow_mid",
    "image_left_brow_outer",
    "image_right_brow_inner",
    "image_right_brow_mid",
    "image_right_brow_outer",
    "nose_tip",
    "image_left_mouth_corner",
    "image_right_mouth_corner",
    "upper_lip_mid",
    "lower_lip_mid",
)
BASE_COLUMNS = (
    "file", "split", "label", "severity", "jpeg_quality", "mask",
    "face_x", "face_y", "face_w", "face_h",
)  # fmt: skip
COLUMNS = BASE_COLUMNS + tuple(f"{n}_{axis}" for n in LANDMARK_NAMES for axis in ("x", "y"))


@dataclass
class LabelRow:
    """One row of labels.csv; paths are relative to the data set folder (POSIX)."""

    file: str
    split: str
    label: str
    severity: float
    jpeg_quality: int
    mask: str
    face_box: tuple[int, int, int, int]
    landmarks: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class DatasetSummary:
    out: Path
    count: int
    seed: int
    size: int
    counts: dict[str, dict[str, int]]  # split -> label -> images
    wall_time_s: float
    images_per_s: float


def assign_splits(
    count: int, seed: int, split: tuple[float, float, float]
) -> list[tuple[str, str]]:
    """(split, label) of every image index: a seeded shuffle into splits, labels balanced."""
    if len(split) != 3 or min(split) < 0 or not np.isclose(sum(split), 1.0):
        raise HemifaceError(f"split must be three non-negative fractions summing to 1, not {split}")
    order = np.random.default_rng([seed, 2**31 - 1]).permutation(count)
    n_train = int(round(count * split[0]))
    n_val = int(round(count * split[1]))
    bounds = {"train": order[:n_train], "val": order[n_train : n_train + n_val],
              "test": order[n_train + n_val :]}  # fmt: skip
    assignment: list[tuple[str, str]] = [("", "")] * count
    for name, members in bounds.items():
        for rank, index in enumerate(sorted(int(i) for i in members)):
            assignment[index] = (name, LABELS[rank % 2])
    return assignment


def render_item(index: int, label: str, seed: int, size: int) -> SynthFace:
    """Re-render image `index` of a data set made with `seed` (deterministic)."""
    rng = np.random.default_rng([seed, index])
    severity = float(rng.uniform(*SEVERITY_RANGE))
    return render_face(rng, label, severity, size)


def render_as_read(seed: int, index: int, size: int = 224) -> tuple[np.ndarray, float, float]:
    """(RGB image, label 0/1 with 1 = Right, severity) of face `index` of a training stream
    seeded with `seed`, exactly as a data set file reads back: rendered, JPEG-encoded at the
    face's own quality and decoded again. Labels alternate Left, Right by index."""
    rng = np.random.default_rng([seed, index])
    label = LABELS[index % 2]
    severity = float(rng.uniform(*SEVERITY_RANGE))
    face = render_face(rng, label, severity, size)
    quality = face.params.jpeg_quality if face.params else 90
    jpeg = _encode(".jpg", cv2.cvtColor(face.image, cv2.COLOR_RGB2BGR),
                   [cv2.IMWRITE_JPEG_QUALITY, quality])  # fmt: skip
    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise HemifaceError("OpenCV could not decode a .jpg image it had just encoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), float(index % 2), severity


def render_job(job: tuple[int, int, int]) -> tuple[np.ndarray, float, float]:
    """`render_as_read(seed, index, size)` for a worker process's map."""
    return render_as_read(*job)


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise HemifaceError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise HemifaceError(f"{out}: folder is not empty (use --force to replace a data set)")
        for name in (*SPLITS, "masks"):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in (LABELS_CSV, SETTINGS_JSON):
            (out / name).unlink(missing_ok=True)
    for name in SPLITS:
        for label in LABELS:
            (out / name / label).mkdir(parents=True, exist_ok=True)
            (out / "masks" / name / label).mkdir(parents=True, exist_ok=True)


def _encode(suffix: str, image: np.ndarray, params: list[int]) -> bytes:
    ok, data = cv2.imencode(suffix, image, params)
    if not ok:
        raise HemifaceError(f"OpenCV could not encode a {suffix} image")
    return data.tobytes()


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise HemifaceError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _make_item(job: tuple[int, str, str, int, int]) -> tuple[str, str, bytes, bytes, list]:
    """Render and encode one image (top level, so worker processes can run it)."""
    index, split_name, label, seed, size = job
    face = render_item(index, label, seed, size)
    stem = f"face_{index:06d}"
    file = f"{split_name}/{label}/{stem}.jpg"
    mask = f"masks/{split_name}/{label}/{stem}.png"
    quality = face.params.jpeg_quality if face.params else 90
    bgr = cv2.cvtColor(face.image, cv2.COLOR_RGB2BGR)
    jpeg = _encode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    png = _encode(".png", face.mask.astype(np.uint8) * 255, [cv2.IMWRITE_PNG_BILEVEL, 1])
    return file, mask, jpeg, png, _row(face, file, split_name, mask, quality)


def _row(face: SynthFace, file: str, split: str, mask: str, quality: int) -> list[object]:
    values: list[object] = [file, split, face.label, f"{face.severity:.4f}", quality, mask,
                            *face.face_box]  # fmt: skip
    for name in LANDMARK_NAMES:
        x, y = face.landmarks[name]
        values += [f"{x:.2f}", f"{y:.2f}"]
    return values


def generate_dataset(
    out: Path,
    count: int,
    seed: int = 0,
    size: int = 224,
    split: tuple[float, float, float] = (0.7, 0.15, 0.15),
    progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
    workers: int = 1,
) -> DatasetSummary:
    """Render `count` faces into `out`; `progress(done)` is called after every image.

    `workers` > 1 renders in that many processes; the output is byte-identical."""
    out = Path(out)
    if count < 1:
        raise HemifaceError(f"count must be at least 1, not {count}")
    assignment = assign_splits(count, seed, split)
    _prepare(out, overwrite)
    counts = {name: dict.fromkeys(LABELS, 0) for name in SPLITS}
    started = time.perf_counter()
    with open(out / LABELS_CSV, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        jobs = [(index, split_name, label, seed, size)
                for index, (split_name, label) in enumerate(assignment)]  # fmt: skip
        with contextlib.ExitStack() as stack:
            items: Iterator[tuple[str, str, bytes, bytes, list]]
            if workers > 1:
                pool = stack.enter_context(
                    multiprocessing.get_context("spawn").Pool(min(workers, count))
                )
                items = pool.imap(_make_item, jobs, chunksize=16)
            else:
                items = map(_make_item, jobs)
            for done, (file, mask, jpeg, png, row) in enumerate(items, start=1):
                _write(out / file, jpeg)
                _write(out / mask, png)
                writer.writerow(row)
                counts[row[1]][row[2]] += 1
                if progress is not None:
                    progress(done)
    wall = time.perf_counter() - started
    summary = DatasetSummary(out, count, seed, size, counts, wall, count / max(wall, 1e-9))
    settings = {
        "generator": "hemiface.synth",
        "generator_version": GENERATOR_VERSION,
        "severity_range": list(SEVERITY_RANGE),
        "split": list(split),
        **{k: v for k, v in asdict(summary).items() if k != "out"},
    }
    (out / SETTINGS_JSON).write_text(json.dumps(settings, indent=2) + "\n")
    return summary


def read_labels(out: Path) -> list[LabelRow]:
    """Parse OUT/labels.csv; HemifaceError names the file and row when it is malformed."""
    path = Path(out) / LABELS_CSV
    if not path.is_file():
        raise HemifaceError(f"{path}: no labels.csv here (is this a `hemiface synth` folder?)")
    rows: list[LabelRow] = []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in BASE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise HemifaceError(f"{path}: missing column(s) {', '.join(missing)}")
        names = [n for n in LANDMARK_NAMES if f"{n}_x" in (reader.fieldnames or [])]
        for line, record in enumerate(reader, start=2):
            try:
                rows.append(
                    LabelRow(
                        file=record["file"],
                        split=record["split"],
                        label=record["label"],
                        severity=float(record["severity"]),
                        jpeg_quality=int(record["jpeg_quality"]),
                        mask=record["mask"],
                        face_box=tuple(
                            int(record[k]) for k in ("face_x", "face_y", "face_w", "face_h")
                        ),  # type: ignore[arg-type]
                        landmarks={
                            n: (float(record[f"{n}_x"]), float(record[f"{n}_y"])) for n in names
                        },
                    )
                )
            except (TypeError, ValueError) as exc:
                raise HemifaceError(f"{path}: row {line} is malformed ({exc})") from None
            if rows[-1].label not in LABELS or rows[-1].split not in SPLITS:
                raise HemifaceError(f"{path}: row {line} has an unknown label or split")
    return rows
