"""`hemiface predict` and `hemiface run` as a user runs them: real processes, real files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from support import default_sigint

from hemiface.runtime.manifest import MANIFEST_NAME

HEMIFACE = [sys.executable, "-m", "hemiface"]


def hemiface(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HEMIFACE, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_runtime_never_imports_tensorflow(model_set_dir: Path, tmp_path: Path, astronaut) -> None:
    image = tmp_path / "face.jpg"
    cv2.imwrite(str(image), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    code = f"""
import sys
import hemiface.runtime.cli, hemiface.runtime.modelset, hemiface.runtime.face
import hemiface.runtime.pipeline, hemiface.runtime.sources, hemiface.runtime.overlay
import hemiface.runtime.batch
from hemiface.runtime.modelset import load_model_set
from hemiface.runtime.batch import predict_files
from hemiface.runtime.overlay import draw_figure
model_set = load_model_set({str(model_set_dir)!r})
result = next(predict_files([{str(image)!r}], model_set, crop="face", keep_images=True))
draw_figure(result.image, result.prediction)
assert result.box is not None and result.prediction is not None
print(sorted(m for m in ("tensorflow", "keras", "tf_keras", "matplotlib") if m in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture(scope="module")
def images(tmp_path_factory, astronaut) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("images")
    paths = {}
    photo = cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR)
    lit = photo.copy()
    lit[:, 256:] = np.clip(lit[:, 256:].astype(int) + 90, 0, 255).astype(np.uint8)
    paths["right.jpg"] = folder / "right.jpg"
    cv2.imwrite(str(paths["right.jpg"]), lit)
    paths["left.png"] = folder / "left.png"
    cv2.imwrite(str(paths["left.png"]), lit[:, ::-1])
    grey = cv2.cvtColor(lit, cv2.COLOR_BGR2GRAY)
    paths["grey.png"] = folder / "grey.png"
    cv2.imwrite(str(paths["grey.png"]), grey)
    rgba = cv2.cvtColor(lit, cv2.COLOR_BGR2BGRA)
    paths["rgba.png"] = folder / "rgba.png"
    cv2.imwrite(str(paths["rgba.png"]), rgba)
    paths["deep.png"] = folder / "deep.png"
    cv2.imwrite(str(paths["deep.png"]), lit.astype(np.uint16) * 257)
    return paths


def test_predict_table(model_set_dir: Path, images) -> None:
    result = hemiface("predict", images["right.jpg"], "--models", model_set_dir)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "fastest verified on this machine" in out  # timed here on first use
    for title in ("Base", "Fine-tuned", "CNN", "ensemble (3/3 agree)"):
        assert title in out
    assert "Right" in out and "Left" not in out


def test_predict_json_formats_and_figure(model_set_dir: Path, images, tmp_path: Path) -> None:
    figure = tmp_path / "fig.png"
    args = [images["right.jpg"], images["left.png"], images["grey.png"], images["rgba.png"]]
    result = hemiface(
        "predict", *args, images["deep.png"], "--models", model_set_dir,
        "--json", "--format", "float32", "--figure", figure,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(r["image"]).name for r in rows] == [
        "right.jpg", "left.png", "grey.png", "rgba.png", "deep.png"
    ]  # fmt: skip
    assert all(r["format"] == "float32" for r in rows)
    labels = [r["ensemble"]["label"] for r in rows]
    assert labels == ["Right", "Left", "Right", "Right", "Right"]
    first = rows[0]
    assert set(first["models"]) == {
        "mobilenetv2_base_model", "mobilenetv2_finetuned_model", "cnn_stroke_model"
    }  # fmt: skip
    assert first["ensemble"]["agree"] == 3 and first["ensemble"]["disagree"] is False
    # RGBA and 16-bit PNGs of the same picture: the same answer as the 8-bit RGB PNG would
    # give; the JPEG differs by its compression only
    assert rows[4]["ensemble"]["p"] == rows[3]["ensemble"]["p"]
    assert abs(rows[3]["ensemble"]["p"] - rows[0]["ensemble"]["p"]) < 0.01
    figures = sorted(tmp_path.glob("fig_*.png"))
    assert len(figures) == 5
    drawn = cv2.imread(str(figures[0]))
    assert drawn is not None and drawn.shape[0] > 448  # title band above the image


def test_predict_face_crop_and_only(model_set_dir: Path, images) -> None:
    result = hemiface(
        "predict", images["right.jpg"], "--models", model_set_dir, "--crop", "face",
        "--only", "cnn_stroke_model", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    assert list(row["models"]) == ["cnn_stroke_model"]
    x, y, w, h = row["face"]
    assert abs(x + w / 2 - 223) < 25 and abs(y + h / 2 - 115) < 25


def test_bad_inputs_reported_batch_goes_on(model_set_dir: Path, images, tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture\n")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(images["right.jpg"].read_bytes()[:5000])
    empty_png = tmp_path / "empty.png"
    empty_png.write_bytes(b"")
    bomb = tmp_path / "bomb.png"  # a header claiming 40000x40000 pixels
    header = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (40000).to_bytes(4, "big") * 2
    bomb.write_bytes(header + b"\x08\x02\x00\x00\x00" + b"\x00" * 64)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    bad = [text, truncated, empty_png, bomb, empty_dir, tmp_path / "missing.jpg"]
    result = hemiface(
        "predict", images["right.jpg"], *bad, images["left.png"], "--models", model_set_dir,
        "--json",
    )  # fmt: skip
    assert result.returncode == 2
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r.get("ensemble", {}).get("label") for r in rows if "error" not in r] == [
        "Right", "Left"
    ]  # fmt: skip
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == len(bad) == sum("error" in r for r in rows)
    for path, line in zip(bad, errors, strict=True):
        assert str(path) in line
    assert "over the limit" in errors[3] and "no images" in errors[4]
    assert "Traceback" not in result.stderr


def test_broken_model_sets_are_one_line(model_set_dir: Path, images, tmp_path: Path) -> None:
    tampered = tmp_path / "tampered"
    shutil.copytree(model_set_dir, tampered)
    for fmt in ("float32", "int8"):  # whichever format this machine would choose
        with open(tampered / f"cnn_stroke_model.{fmt}.tflite", "ab") as handle:
            handle.write(b"\x00")
    result = hemiface("predict", images["right.jpg"], "--models", tampered)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "sha256 mismatch" in result.stderr
    newer = tmp_path / "newer"
    shutil.copytree(model_set_dir, newer)
    data = json.loads((newer / MANIFEST_NAME).read_text())
    data["schema_version"] += 1
    (newer / MANIFEST_NAME).write_text(json.dumps(data))
    result = hemiface("predict", images["right.jpg"], "--models", newer)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "upgrade hemiface" in result.stderr
    result = hemiface("predict", images["right.jpg"], "--models", tmp_path / "nothing")
    assert result.returncode != 0 and result.stderr.count("\n") == 1


@pytest.fixture(scope="module")
def face_video(tmp_path_factory, helpers, astronaut) -> Path:
    folder = tmp_path_factory.mktemp("cli_video")
    frames = [helpers.face_frame(astronaut, "right") for _ in range(10)]
    return helpers.write_video(folder / "face.mp4", frames)


def test_run_headless_json_lines_and_recording(
    model_set_dir: Path, face_video: Path, tmp_path: Path
) -> None:
    record = tmp_path / "annotated.mp4"
    result = hemiface(
        "run", "--models", model_set_dir, "--video", face_video, "--headless",
        "--record", record, "--every", "3", "--smooth", "0.5", "--format", "int8",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["frame"] for r in rows] == list(range(10))
    assert all(r["face"] is not None and r["ensemble"]["label"] == "Right" for r in rows)
    assert all(r["format"] == "int8" for r in rows)
    assert (
        rows[0]["models"]["cnn_stroke_model"]["p"] == rows[0]["models"]["cnn_stroke_model"]["p_raw"]
    )  # the EMA starts at the first value
    assert "end of video" in result.stderr and "10 frames" in result.stderr
    capture = cv2.VideoCapture(str(record))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 10
    capture.release()
    mirrored = hemiface(
        "run", "--models", model_set_dir, "--video", face_video, "--headless", "--mirror",
        "--every", "3", "--smooth", "0.5", "--format", "int8",
    )  # fmt: skip
    rows_mirror = [json.loads(line) for line in mirrored.stdout.splitlines()]
    strip = lambda r: (r["face"], r["models"])  # noqa: E731
    assert [strip(r) for r in rows_mirror] == [strip(r) for r in rows]


def test_run_argument_errors_are_one_line(model_set_dir: Path, tmp_path: Path) -> None:
    result = hemiface("run", "--models", model_set_dir, "--headless")
    assert result.returncode != 0 and "exactly one of" in result.stderr
    result = hemiface(
        "run", "--models", model_set_dir, "--video", tmp_path / "no.mp4", "--headless"
    )
    assert result.returncode != 0 and "no such video file" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_ctrl_c_leaves_a_playable_recording(
    model_set_dir: Path, helpers, astronaut, tmp_path: Path
) -> None:
    frames = [helpers.face_frame(astronaut, "right")] * 400
    video = helpers.write_video(tmp_path / "long.mp4", frames)
    record = tmp_path / "cut.mp4"
    process = subprocess.Popen(
        [*HEMIFACE, "run", "--models", str(model_set_dir), "--video", str(video),
         "--headless", "--record", str(record)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint,
    )  # fmt: skip
    assert process.stdout is not None
    for _ in range(5):
        assert process.stdout.readline()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    capture = cv2.VideoCapture(str(record))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    assert 5 <= count < 400


def test_env_is_quiet(model_set_dir: Path, images) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    result = subprocess.run(
        [*HEMIFACE, "predict", str(images["right.jpg"]), "--models", str(model_set_dir),
         "--format", "float32", "--json"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0
    assert result.stderr == ""  # no interpreter INFO lines


def test_run_without_display_is_one_line(model_set_dir: Path, face_video: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run(
        [*HEMIFACE, "run", "--models", str(model_set_dir), "--video", str(face_video)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "use --headless" in result.stderr and result.stderr.count("\n") == 1


# `hemiface` with the live loop's clock replaced: the backoff waits are recorded in a file
# instead of slept through (run_stream's `sleep` is the loop's one way to wait).
RECORDED_BACKOFF = """
import atexit, json, sys
from hemiface.runtime import pipeline
waits, waits_file = [], sys.argv.pop(1)
pipeline.run_stream.__kwdefaults__["sleep"] = waits.append
atexit.register(lambda: open(waits_file, "w").write(json.dumps(waits)))
from hemiface.cli import main
sys.argv[0] = "hemiface"
main()
"""


def test_missing_camera_retries_then_one_line(model_set_dir: Path, tmp_path: Path) -> None:
    # 5 reopen attempts with 0.5+1+2+4+8 s of backoff, then one line and a non-zero exit
    waits_file = tmp_path / "waits.json"
    result = subprocess.run(
        [sys.executable, "-c", RECORDED_BACKOFF, str(waits_file), "run",
         "--models", str(model_set_dir), "--camera", "57", "--headless"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: camera 57: cannot open it")
    assert "gave up after 5 reconnect attempts" in result.stderr
    assert "WARN" not in result.stderr and "Traceback" not in result.stderr
    assert json.loads(waits_file.read_text()) == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_exif_orientation_and_no_face(model_set_dir: Path, images, tmp_path: Path) -> None:
    image_module = pytest.importorskip("PIL.Image")
    upright = cv2.cvtColor(cv2.imread(str(images["left.png"])), cv2.COLOR_BGR2RGB)
    stored = image_module.fromarray(np.ascontiguousarray(upright[::-1, ::-1]))  # upside down
    exif = image_module.Exif()
    exif[0x0112] = 3  # orientation: rotate 180 to display
    rotated = tmp_path / "rotated.jpg"
    stored.save(rotated, exif=exif, quality=95)
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    result = hemiface(
        "predict", rotated, images["left.png"], "--models", model_set_dir, "--json"
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    # Applying EXIF turns it back upright: the same side as the upright file (a decoder that
    # ignored the tag would see the bright half on the other side).
    assert rows[0]["ensemble"]["label"] == rows[1]["ensemble"]["label"] == "Left"
    result = hemiface("predict", blank, "--models", model_set_dir, "--crop", "face", "--json")
    assert result.returncode == 0  # no face is a state, not an error
    row = json.loads(result.stdout)
    assert row["status"] == "no face" and row["face"] is None and "models" not in row
    table = hemiface("predict", blank, "--models", model_set_dir, "--crop", "face")
    assert table.returncode == 0 and "no face found" in table.stdout
