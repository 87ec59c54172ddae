"""The runtime with fused artifacts and concurrency: same answers as the separate artifacts
one after the other, the int8 pixel path, the live loop's overlap, the live-mode choice."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hemiface.core.errors import HemifaceError
from hemiface.runtime.fused import feed_pixels, pixel_feed, quantize
from hemiface.runtime.manifest import load_manifest, save_manifest
from hemiface.runtime.modelset import load_model_set
from hemiface.runtime.preprocess import to_tensor

NAMES = ["mobilenetv2_base_model", "mobilenetv2_finetuned_model", "cnn_stroke_model"]


@pytest.fixture(scope="module")
def fused_dir(fused_set) -> Path:  # noqa: ANN001
    return fused_set[1]


def _images(n: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [rng.integers(0, 256, (50 + 7 * i, 41 + 5 * i, 3), dtype=np.uint8) for i in range(n)]


@pytest.mark.parametrize(("fmt", "tolerance"), [("float32", 1e-5), ("int8", 2 / 256)])
def test_fused_set_gives_the_separate_artifacts_answers(
    fused_dir: Path, fmt: str, tolerance: float
) -> None:
    fused = load_model_set(fused_dir, fmt, num_threads=1)
    separate = load_model_set(fused_dir, fmt, num_threads=1, fuse=False)
    assert fused.names == separate.names == NAMES
    assert fused.interpreters == 2 and separate.interpreters == 3
    assert "fused Base+Fine-tuned" in fused.describe() and "fused" not in separate.describe()
    assert [e.name for e in fused.entries] == NAMES
    for image in _images():
        a, b = fused.probabilities(image), separate.probabilities(image)
        assert np.max(np.abs(np.subtract(a, b))) <= tolerance, (a, b)
    prediction = fused.predict(_images()[0])
    assert [m.name for m in prediction.models] == NAMES


def test_threads_give_exactly_the_sequential_answers(fused_dir: Path) -> None:
    sequential = load_model_set(fused_dir, "float32", num_threads=1)
    threaded = load_model_set(fused_dir, "float32", num_threads=1, concurrency="threads")
    try:
        assert "at once" in threaded.describe()
        for image in _images():
            assert threaded.probabilities(image) == sequential.probabilities(image)
        threaded.bare_invokes()  # every interpreter, at once, without raising
    finally:
        threaded.close()


def test_int8_io_takes_pixels_without_arithmetic(fused_dir: Path) -> None:
    model_set = load_model_set(fused_dir, "int8", num_threads=1)
    assert model_set.pixel_inputs == ["int8", "int8"]  # scale 1/255, zero point -128
    runner = model_set.fused[0]
    for image in _images(3):
        tensor = to_tensor(image, runner.entry.preprocessing)
        fast = model_set.probabilities(image)
        slow = runner.run(tensor) + [model_set.classifiers[0].predict_one(tensor)]
        assert fast == slow


def test_feeding_pixels_is_exactly_quantizing() -> None:
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    for dtype, zero in ((np.int8, -128), (np.uint8, 0)):
        detail = {"dtype": dtype, "quantization": (1 / 255, zero)}
        kind = pixel_feed(detail, 1 / 255, 0.0)
        assert kind == np.dtype(dtype).name
        expected = quantize(pixels.astype(np.float32) / 255.0, detail)
        assert np.array_equal(feed_pixels(pixels, kind), expected)
    assert pixel_feed({"dtype": np.int8, "quantization": (1 / 250, -128)}, 1 / 255, 0.0) is None
    assert pixel_feed({"dtype": np.float32, "quantization": (0.0, 0)}, 1 / 255, 0.0) is None


def test_a_fused_artifact_that_failed_is_not_used(fused_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "set"
    shutil.copytree(fused_dir, copy)
    manifest = load_manifest(copy)
    for fused in manifest.fused:
        fused.passed = False
    save_manifest(manifest, copy)
    model_set = load_model_set(copy, "float32")
    assert model_set.fused == [] and model_set.interpreters == 3


def test_overlapped_loop_gives_the_same_frames_in_order(
    fused_dir: Path, helpers, astronaut, tmp_path: Path
) -> None:
    from hemiface.runtime.face import FaceDetector
    from hemiface.runtime.pipeline import StreamSettings, run_stream
    from hemiface.runtime.sources import VideoFileSource

    frames = [helpers.face_frame(astronaut, "right" if i % 2 else "left") for i in range(9)]
    video = helpers.write_video(tmp_path / "faces.mp4", frames)
    runs = {}
    for overlap in (False, True):
        results: list = []
        model_set = load_model_set(fused_dir, "float32", num_threads=1)
        stats = run_stream(
            VideoFileSource(video),
            model_set,
            StreamSettings(crop="face", overlap=overlap),
            detector=FaceDetector(),
            on_result=results.append,
        )
        assert stats.ended == "end of video" and stats.frames == 9
        assert ("face_wait" in stats.stage_ms) == overlap
        assert {"read", "face", "models", "draw"} <= set(stats.stage_ms)
        runs[overlap] = [(r.frame, r.box, r.raw) for r in results]
    assert [f for f, _, _ in runs[True]] == list(range(9))
    assert runs[True] == runs[False]
    assert all(box is not None for _, box, _ in runs[True])


def test_overlapped_loop_stops_at_max_frames(fused_dir: Path, helpers, astronaut, tmp_path):  # noqa: ANN001, ANN201
    from hemiface.runtime.pipeline import StreamSettings, run_stream
    from hemiface.runtime.sources import VideoFileSource

    frames = [helpers.face_frame(astronaut, "right") for _ in range(8)]
    video = helpers.write_video(tmp_path / "faces.mp4", frames)
    model_set = load_model_set(fused_dir, "int8", num_threads=1)
    settings = StreamSettings(crop="center", max_frames=3, overlap=True)
    stats = run_stream(VideoFileSource(video), model_set, settings)
    assert stats.ended == "max frames" and stats.frames == 3


def test_live_mode_asked_for_is_not_measured_and_auto_measures_all(fused_dir: Path) -> None:
    from hemiface.runtime.face import FaceDetector
    from hemiface.runtime.live import LIVE_MODES, Candidate, candidates, choose_live_mode

    opened: list[Candidate] = []

    def open_set(candidate: Candidate):  # noqa: ANN202
        opened.append(candidate)
        return load_model_set(
            fused_dir, "float32", num_threads=candidate.threads, concurrency=candidate.concurrency
        )

    plan, model_set = choose_live_mode(open_set, FaceDetector(), (320, 240), "overlap", 2)
    assert plan.candidate == Candidate("overlap", 1) and plan.reason == "asked for"
    assert plan.candidate.overlap and plan.candidate.concurrency == "sequential"
    assert len(opened) == 1 and plan.ms_per_frame == {}
    opened.clear()
    plan, model_set = choose_live_mode(
        open_set, FaceDetector(), (320, 240), "auto", 2, rounds=1, frames=2
    )
    tried = candidates(2)
    assert opened == tried and {c.mode for c in tried} == set(LIVE_MODES) - {"lanes"}
    assert set(plan.ms_per_frame) == {c.label for c in tried}
    assert plan.ms_per_frame[plan.candidate.label] == min(plan.ms_per_frame.values())
    assert model_set.concurrency == plan.candidate.concurrency
    assert model_set.probabilities(_images(1)[0])
    model_set.close()
    assert [c.threads for c in candidates(2, fixed_threads=3)] == [3, 3, 3, 3]
    with pytest.raises(ValueError, match="live mode"):
        choose_live_mode(open_set, None, (320, 240), "fastest")
    # Two cores and a detector on every frame: auto takes lanes, one frame a core, untimed.
    opened.clear()
    plan, model_set = choose_live_mode(
        open_set, FaceDetector(), (320, 240), "auto", 2, cores=2, lanes_possible=True
    )
    assert plan.candidate == Candidate("lanes", 1, 2) and opened == [plan.candidate]
    model_set.close()
    with pytest.raises(HemifaceError, match="every frame"):
        choose_live_mode(open_set, None, (320, 240), "lanes", 2, cores=2, lanes_possible=False)


def test_lanes_give_every_frame_in_order_with_the_same_answers(
    fused_dir: Path, helpers, astronaut, tmp_path: Path
) -> None:
    from hemiface.runtime.face import FaceDetector
    from hemiface.runtime.pipeline import StreamSettings, run_stream
    from hemiface.runtime.sources import VideoFileSource

    frames = [helpers.face_frame(astronaut, side) for side in ("left", "right") * 6]
    video = helpers.write_video(tmp_path / "faces.mp4", frames)
    runs = {}
    opened = []

    def open_lane():  # noqa: ANN202
        lane_set = load_model_set(fused_dir, "float32", num_threads=1)
        opened.append(lane_set)
        return lane_set, FaceDetector()

    for lanes in (1, 3):
        results: list = []
        model_set = load_model_set(fused_dir, "float32", num_threads=1)
        stats = run_stream(
            VideoFileSource(video),
            model_set,
            StreamSettings(crop="face", lanes=lanes),
            detector=FaceDetector(),
            on_result=results.append,
            open_lane=open_lane,
        )
        assert stats.ended == "end of video" and stats.frames == len(frames)
        runs[lanes] = results
    assert len(opened) == 2  # the first lane uses the set given, the others their own
    assert [r.frame for r in runs[3]] == list(range(len(frames)))
    for one, three in zip(runs[1], runs[3], strict=True):
        assert one.raw == three.raw and one.box == three.box
    with pytest.raises(HemifaceError, match="lanes"):
        StreamSettings(lanes=0)


def test_run_cli_says_which_mode_ran(fused_dir: Path, helpers, astronaut, tmp_path: Path) -> None:
    frames = [helpers.face_frame(astronaut, "right") for _ in range(5)]
    video = helpers.write_video(tmp_path / "faces.mp4", frames)
    command = [sys.executable, "-m", "hemiface", "run", "--models", str(fused_dir)]
    command += ["--video", str(video), "--headless", "--format", "float32"]
    done = subprocess.run(
        [*command, "--concurrency", "overlap", "--no-fuse"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "live mode overlap, 1 thread (asked for)" in done.stderr
    assert "3 interpreter(s)" in done.stderr
    assert len([json.loads(line) for line in done.stdout.splitlines()]) == 5
    bad = subprocess.run([*command, "--concurrency", "fastest"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "'--concurrency'" in bad.stderr and "'auto', 'sequential'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_delegation_report_names_what_a_dynamic_batch_leaves_out(tmp_path: Path) -> None:
    import keras
    import tensorflow as tf

    from hemiface.runtime.backends import resolve_backend
    from hemiface.runtime.delegation import delegation_report

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3)(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    model.export(str(tmp_path / "dynamic"), verbose=False)  # batch left dynamic
    content = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "dynamic")).convert()
    report = delegation_report(resolve_backend().make_interpreter(content, 1))
    assert report is not None and report.partitions == 2 and not report.single
    assert {"SHAPE", "PACK"} <= set(report.undelegated_ops)
    assert "SHAPE" in report.describe() and report.describe().startswith("2 partitions")
