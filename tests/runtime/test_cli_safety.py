"""`predict` and `run` never lose or garble what the user gave them: file names with Rich
markup print as they are, figures and recordings never overwrite an input, a recording
survives SIGTERM and SIGHUP, and bad options are one line, not a crash."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from hemiface.runtime.manifest import MANIFEST_NAME

HEMIFACE = [sys.executable, "-m", "hemiface"]


def hemiface(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HEMIFACE, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def markup_images(tmp_path_factory, astronaut) -> dict[str, Path]:
    # Paths holding "[/x]" (a folder "shots[" with a file "x].png"), "[left]" and "[red]".
    folder = tmp_path_factory.mktemp("markup") / "[red]photos"
    (folder / "shots[").mkdir(parents=True)
    photo = cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR)
    paths = {"close": folder / "shots[" / "x].png", "left": folder / "[left]b.png"}
    assert cv2.imwrite(str(paths["close"]), photo)
    assert cv2.imwrite(str(paths["left"]), photo[:, ::-1])
    paths["bad"] = folder / "shots[" / "x][bold].jpg"
    paths["bad"].write_text("not a picture [/x]\n")
    assert "[/x]" in str(paths["close"]) and "[/x]" in str(paths["bad"])
    return paths


def test_file_names_with_markup_print_as_they_are(model_set_dir: Path, markup_images) -> None:
    images = [markup_images["close"], markup_images["bad"], markup_images["left"]]
    result = hemiface("predict", *images, "--models", model_set_dir)
    assert result.returncode == 2, result.stderr  # one bad file; the batch went on
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    # both good images have their table, titled with their path, brackets and all
    assert str(markup_images["close"]) in result.stdout
    assert str(markup_images["left"]) in result.stdout
    assert result.stdout.count("ensemble (3/3 agree)") == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(markup_images["bad"]) in errors[0]


def test_manifest_titles_and_labels_with_markup_print_as_they_are(
    model_set_dir: Path, markup_images, tmp_path: Path
) -> None:
    odd = tmp_path / "odd"
    shutil.copytree(model_set_dir, odd)
    data = json.loads((odd / MANIFEST_NAME).read_text())
    for entry in data["models"]:
        entry.update(title=f"[/x]{entry['title']}", labels=["[left]L", "R[/x]"])
        entry.update(positive_label="R[/x]")
    (odd / MANIFEST_NAME).write_text(json.dumps(data))
    result = hemiface("predict", markup_images["left"], "--models", odd, "--only",
                      "cnn_stroke_model")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "[/x]CNN" in result.stdout
    assert "[left]L" in result.stdout or "R[/x]" in result.stdout


def test_figures_never_overwrite_an_input_and_a_bad_path_is_per_image(
    model_set_dir: Path, markup_images, tmp_path: Path
) -> None:
    image = tmp_path / "face.png"
    shutil.copy(markup_images["close"], image)
    before = image.read_bytes()
    link = tmp_path / "other-name.png"
    os.link(image, link)
    for target in (image, link, tmp_path / "." / "face.png"):
        result = hemiface("predict", image, "--models", model_set_dir, "--figure", target)
        assert result.returncode == 2, result.stderr
        assert "would overwrite an input" in result.stderr
        assert "Right" in result.stdout or "Left" in result.stdout  # the prediction itself ran
        assert image.read_bytes() == before
    manifest = model_set_dir / MANIFEST_NAME
    kept = manifest.read_bytes()
    result = hemiface("predict", image, "--models", model_set_dir, "--figure", manifest)
    assert result.returncode == 2 and manifest.read_bytes() == kept
    # A folder that does not exist: one line per image, every image still predicted.
    missing = tmp_path / "no-such-folder" / "fig.png"
    result = hemiface("predict", image, markup_images["left"], "--models", model_set_dir,
                      "--figure", missing, "--json")  # fmt: skip
    assert result.returncode == 2
    assert [json.loads(line)["ensemble"]["label"] for line in result.stdout.splitlines()]
    assert len(result.stdout.splitlines()) == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all("does not exist" in line for line in errors)
    # Options no image can fix are said once, before any work.
    for figure, message in ((tmp_path, "names a folder"), (tmp_path / "f.xyz", "cannot write")):
        result = hemiface("predict", image, "--models", model_set_dir, "--figure", figure)
        assert result.returncode == 2 and message in result.stderr
        assert result.stderr.count("\n") == 1 and result.stdout == ""


@pytest.fixture(scope="module")
def long_video(tmp_path_factory, helpers, astronaut) -> Path:
    folder = tmp_path_factory.mktemp("stop_video")
    frames = [helpers.face_frame(astronaut, "right", size=(320, 240))] * 300
    return helpers.write_video(folder / "long.mp4", frames)


def _frames_in(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_recording_survives_sigterm_and_sighup(
    model_set_dir: Path, long_video: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    record = tmp_path / "cut.mp4"
    process = subprocess.Popen(
        [*HEMIFACE, "run", "--models", str(model_set_dir), "--video", str(long_video),
         "--headless", "--record", str(record), "--crop", "center"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    for _ in range(5):
        assert process.stdout.readline()
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + sig, stderr
    assert f"interrupted by {sig.name}" in stderr and "Traceback" not in stderr
    frames = _frames_in(record)
    assert 5 <= frames < 300  # the file was closed: its frames read back


def test_run_refuses_to_record_over_an_input_and_bad_camera_numbers(
    model_set_dir: Path, long_video: Path, tmp_path: Path
) -> None:
    before = long_video.stat().st_size
    link = tmp_path / "same-video.mp4"
    os.symlink(long_video, link)
    for target in (long_video, link, tmp_path / ".." / tmp_path.name / "same-video.mp4"):
        result = hemiface("run", "--models", model_set_dir, "--video", long_video,
                          "--headless", "--record", target)  # fmt: skip
        assert result.returncode == 2 and "would overwrite an input" in result.stderr
        assert result.stderr.count("\n") == 1
    assert long_video.stat().st_size == before and _frames_in(long_video) == 300
    cases = [
        (["--record", tmp_path / "nowhere" / "out.mp4"], "does not exist"),
        (["--record", tmp_path / "out.txt"], "--record writes .mp4"),
        (["--camera", "-1"], "--camera must be a camera index"),
        (["--max-frames", "0"], "--max-frames must be 1 or more"),
        (["--threads", "-1"], "--threads must be 1 to 64"),
        (["--threads", "100000"], "--threads must be 1 to 64"),
        (["--margin", "-3"], "--margin must be between 0 and 2"),
        (["--width", "0"], "--width and --height"),
    ]
    for extra, message in cases:
        source = [] if "--camera" in extra else ["--video", long_video]
        result = hemiface("run", "--models", model_set_dir, "--headless", *source, *extra)
        assert result.returncode == 2, (extra, result.stderr)
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_input_files_know_the_model_set_and_other_spellings(model_set_dir: Path, tmp_path):
    from hemiface.runtime.manifest import load_manifest
    from hemiface.runtime.outputs import InputFiles

    inputs = InputFiles()
    inputs.add_model_set(model_set_dir)
    for entry in load_manifest(model_set_dir).models:
        assert inputs.overwrites(model_set_dir / entry.file)
        assert inputs.overwrites(model_set_dir / ".." / model_set_dir.name / entry.file)
    assert inputs.overwrites(model_set_dir / MANIFEST_NAME)
    # Nothing lands in the set's folder either: a file added to a signed set breaks it.
    assert inputs.overwrites(model_set_dir / "figure.png")
    assert not inputs.overwrites(tmp_path / "figure.png")
    assert not inputs.overwrites(tmp_path / MANIFEST_NAME)
