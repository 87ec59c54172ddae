"""`--detector blazeface|haar` on `predict` and `run`, as a user runs them (real processes)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

HEMIFACE = [sys.executable, "-m", "hemiface"]


def hemiface(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HEMIFACE, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut) -> Path:
    path = tmp_path_factory.mktemp("detector_cli") / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    return path


def _face_centre(row: dict) -> tuple[float, float]:
    x, y, w, h = row["face"]
    return x + w / 2, y + h / 2


def test_predict_uses_blazeface_from_the_set_by_default_and_haar_on_request(
    blazeface_set_dir: Path, photo: Path
) -> None:
    result = hemiface("predict", photo, "--models", blazeface_set_dir, "--crop", "face")
    assert result.returncode == 0, result.stderr
    assert "face detector blazeface" in result.stdout
    assert "turned" in result.stdout and "to level the eyes" in result.stdout
    both = {}
    for choice in ("blazeface", "haar"):
        result = hemiface(
            "predict", photo, "--models", blazeface_set_dir, "--crop", "face", "--json",
            "--detector", choice,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        both[choice] = json.loads(result.stdout)
    for row in both.values():
        cx, cy = _face_centre(row)
        assert abs(cx - 223) < 25 and abs(cy - 115) < 25
    # The astronaut's head leans: BlazeFace's keypoints level it, Haar knows no roll.
    assert abs(both["blazeface"]["rotation_deg"]) >= 1.0
    assert both["haar"]["rotation_deg"] == 0.0
    result = hemiface(
        "predict", photo, "--models", blazeface_set_dir, "--crop", "face", "--json", "--no-level"
    )
    assert result.returncode == 0 and json.loads(result.stdout)["rotation_deg"] == 0.0


def test_an_older_set_without_a_detector_still_crops_with_haar(
    model_set_dir: Path, photo: Path
) -> None:
    result = hemiface("predict", photo, "--models", model_set_dir, "--crop", "face")
    assert result.returncode == 0, result.stderr
    assert "face detector haar" in result.stdout and "face box" in result.stdout
    result = hemiface(
        "predict", photo, "--models", model_set_dir, "--crop", "face", "--detector", "blazeface"
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "no BlazeFace detector" in result.stderr and "--detector haar" in result.stderr


def test_bad_detector_input_is_one_line(blazeface_set_dir: Path, photo: Path, tmp_path) -> None:
    result = hemiface("predict", photo, "--models", blazeface_set_dir, "--detector", "dlib")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "'--detector'" in result.stderr and "'auto', 'short', 'full', 'haar'" in result.stderr
    tampered = tmp_path / "tampered"
    shutil.copytree(blazeface_set_dir, tampered)
    with open(tampered / "blazeface_short_range.tflite", "ab") as handle:
        handle.write(b"\x00")
    result = hemiface("predict", photo, "--models", tampered, "--crop", "face")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "blazeface_short_range.tflite: sha256 mismatch" in result.stderr
    assert "Traceback" not in result.stderr
    # Without a face crop the detector is not needed, and not read.
    result = hemiface("predict", photo, "--models", tampered, "--json")
    assert result.returncode == 0, result.stderr


def test_run_detects_every_frame_with_blazeface_and_every_third_with_haar(
    blazeface_set_dir: Path, helpers, astronaut, tmp_path: Path
) -> None:
    frames = [helpers.face_frame(astronaut, "right") for _ in range(6)]
    video = helpers.write_video(tmp_path / "face.mp4", frames)
    result = hemiface("run", "--models", blazeface_set_dir, "--video", video, "--headless")
    assert result.returncode == 0, result.stderr
    assert "face detector blazeface, every 1 frame(s)" in result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 6 and all(r["face"] is not None for r in rows)
    assert all("rotation_deg" in r for r in rows)
    result = hemiface(
        "run", "--models", blazeface_set_dir, "--video", video, "--headless", "--detector", "haar"
    )
    assert result.returncode == 0, result.stderr
    assert "face detector haar, every 3 frame(s)" in result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(r["face"] is not None and r["rotation_deg"] == 0.0 for r in rows)
