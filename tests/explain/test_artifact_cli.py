"""`hemiface explain --models SET` as a user runs it: TF-free end to end, real files out,
bad input refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HEMIFACE = [sys.executable, "-m", "hemiface"]
HEAVY = ("tensorflow", "keras", "tf_keras", "matplotlib")


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few synthetic faces with droop masks (labels.csv beside them)."""
    from hemiface.synth.dataset import generate_dataset

    folder = tmp_path_factory.mktemp("faces") / "data"
    generate_dataset(folder, count=8, seed=2, size=64)
    return folder


def _image(faces: Path) -> Path:
    return sorted((faces / "train").rglob("*.jpg"))[0]


def test_explaining_the_artifacts_imports_no_tensorflow_nor_matplotlib(
    fused_set, faces: Path, tmp_path: Path
) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    args = ["explain", str(_image(faces)), "--models", str(fused_set[1]), "--format", "all",
            "--window", "8", "--stride", "8", "--sanity", "--deletion", "--out",
            str(out)]  # fmt: skip
    code = f"""
import sys
from hemiface.cli import app
try:
    app({args!r}, standalone_mode=False)
finally:
    print(sorted(m for m in {HEAVY!r} if m in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"
    report = json.loads((out / "explain-artifacts.json").read_text())
    assert report["formats"] == ["float32", "int8"] and report["reference_format"] == "float32"
    assert report["mask"] is not None  # found through labels.csv
    for model in report["models"]:
        first, int8 = model["formats"]
        assert first["vs_reference"] is None and int8["vs_reference"] is not None
        assert first["sanity"]["randomized"].startswith("every weight buffer")
        assert first["deletion"]["fractions"][0] == 0.0 and first["insertion"]["scores"]
        assert first["mask"]["mask_area_share"] > 0
        saved = np.load(first["files"]["map"])
        assert saved.shape == (32, 32) and saved.dtype == np.float32
    assert (out / "formats.png").stat().st_size > 1000


def test_a_folder_gives_the_drift_table(fused_set, faces: Path, tmp_path: Path) -> None:  # noqa: ANN001
    result = subprocess.run(
        [
            *HEMIFACE,
            "explain",
            "--images",
            str(faces / "train"),
            "--limit",
            "3",
            "--models",
            str(fused_set[1]),
            "--method",
            "rise",
            "--masks",
            "50",
            "--grid",
            "4",
            "--out",
            str(tmp_path),
        ],  # fmt: skip
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "drift.md").read_text()
    assert "| CNN | int8 |" in table and "Does quantisation change where" in table
    drift = json.loads((tmp_path / "drift.json").read_text())
    assert drift["faces"] == 3 and drift["method"] == "rise"
    assert {row["format"] for row in drift["rows"]} == {"float32", "int8"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "int4"], "--format int4: choose from"),
        (["--window", "0"], "at least 1"),
        (["--method", "rise", "--keep", "0"], "--keep must lie"),
    ],
)
def test_bad_options_get_one_line(fused_set, faces: Path, tmp_path: Path, extra, message) -> None:  # noqa: ANN001
    result = subprocess.run(
        [
            *HEMIFACE,
            "explain",
            str(_image(faces)),
            "--models",
            str(fused_set[1]),
            *extra,
            "--out",
            str(tmp_path),
        ],  # fmt: skip
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_folder_without_a_manifest_is_refused(faces: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *HEMIFACE,
            "explain",
            str(_image(faces)),
            "--models",
            str(tmp_path),
            "--method",
            "occlusion",
        ],  # fmt: skip
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "no hemiface.json" in result.stderr and "Traceback" not in result.stderr


def test_help_says_which_method_runs_where() -> None:
    from typer.testing import CliRunner

    from hemiface.cli import app

    done = CliRunner().invoke(app, ["explain", "--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert "ig: Integrated Gradients on the Keras models. Workstation only" in done.output
    assert "occlusion, rise: perturbation maps of a model set's TFLite artifacts" in done.output
    assert "the Pi too (no TensorFlow, no matplotlib)" in done.output
