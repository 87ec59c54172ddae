from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hemiface.cli import app
from hemiface.core.errors import HemifaceError
from hemiface.runtime.images import list_images, read_image
from hemiface.synth.dataset import generate_dataset, read_labels, render_item


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "synth.json"
    }


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "data"
    seen: list[int] = []
    summary = generate_dataset(out, 40, seed=3, progress=seen.append)
    assert seen == list(range(1, 41))
    assert summary.count == 40 and summary.images_per_s > 0
    return out


def test_labels_csv_matches_the_files(small_set):
    rows = read_labels(small_set)
    assert len(rows) == 40
    listed = {r.file for r in rows}
    on_disk = {
        str(p.relative_to(small_set))
        for p in list_images(small_set)
        if not str(p.relative_to(small_set)).startswith("masks")
    }
    assert listed == on_disk
    for row in rows:
        assert row.file.split("/")[:2] == [row.split, row.label]
        assert (small_set / row.mask).is_file()
        assert 0.1 <= row.severity <= 1.0 and 60 <= row.jpeg_quality <= 95
        assert len(row.landmarks) >= 15
    by_split = {s: [r.label for r in rows if r.split == s] for s in ("train", "val", "test")}
    assert [len(v) for v in by_split.values()] == [28, 6, 6]
    for labels in by_split.values():
        assert abs(labels.count("Left") - labels.count("Right")) <= 1


def test_files_are_real_images_and_masks_match_a_rerender(small_set):
    row = read_labels(small_set)[5]
    image = read_image(small_set / row.file)
    assert image.shape == (224, 224, 3)
    mask = read_image(small_set / row.mask)[..., 0] > 127
    index = int(Path(row.file).stem.split("_")[1])
    face = render_item(index, row.label, seed=3, size=224)
    assert np.array_equal(mask, face.mask)
    assert abs(face.severity - row.severity) < 1e-3
    # JPEG is lossy, but only a little at quality >= 60.
    assert np.abs(image.astype(int) - face.image.astype(int)).mean() < 6


def test_same_seed_same_bytes_other_seed_differs(small_set, tmp_path):
    generate_dataset(tmp_path / "again", 40, seed=3)
    assert digest(tmp_path / "again") == digest(small_set)
    generate_dataset(tmp_path / "other", 40, seed=4)
    assert digest(tmp_path / "other") != digest(small_set)


def test_a_non_empty_folder_is_refused_unless_overwritten(tmp_path):
    generate_dataset(tmp_path / "d", 6, seed=0)
    with pytest.raises(HemifaceError, match="not empty"):
        generate_dataset(tmp_path / "d", 6, seed=0)
    generate_dataset(tmp_path / "d", 4, seed=0, overwrite=True)
    assert len(read_labels(tmp_path / "d")) == 4
    train_rows = [r for r in read_labels(tmp_path / "d") if r.split == "train"]
    assert len(list_images(tmp_path / "d" / "train")) == len(train_rows)


def test_read_labels_names_a_missing_file(tmp_path):
    with pytest.raises(HemifaceError, match="labels.csv"):
        read_labels(tmp_path)


def test_cli_synth_writes_and_refuses_to_clobber(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["synth", str(tmp_path / "s"), "--count", "8", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "wrote 8 images" in result.output
    assert len(read_labels(tmp_path / "s")) == 8
    again = runner.invoke(app, ["synth", str(tmp_path / "s"), "--count", "8"])
    assert again.exit_code != 0


def test_synth_imports_no_tensorflow():
    code = (
        "import sys, hemiface.synth.faces, hemiface.synth.dataset, hemiface.synth.cli\n"
        "print([m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_parallel_workers_write_the_same_bytes(small_set, tmp_path):
    generate_dataset(tmp_path / "parallel", 40, seed=3, workers=2)
    assert digest(tmp_path / "parallel") == digest(small_set)
