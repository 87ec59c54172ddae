"""The pipeline section: frames per second of the live loop on a 640x480 video.

Each format and variant (see VARIANTS: separate or fused artifacts, the live modes of
hemiface.runtime.live) runs in its own worker process through
hemiface.runtime.pipeline.run_stream (face detection on every frame by the set's default
detector, BlazeFace when the set carries it, else Haar; the face crop, all models of the
set, no window); each row keeps the loop's stage times.
The video is the caller's (--video) or made here: a real face photograph (scikit-image's
astronaut, when installed) drifting across a 640x480 frame, else the first labelled image.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hemiface.benchmarks.sections import PipelineRow, PipelineSection
from hemiface.benchmarks.stats import summarize_ms
from hemiface.runtime.images import read_image

Step = Callable[[str], None]
FRAME_W, FRAME_H = 640, 480
# (variant, fused artifact?, live mode): "before" is the loop as it ran before fusion and
# concurrency (each model's own artifact, one thing after another); "auto" measures the
# modes at start, as `hemiface run` does, and runs the fastest.
VARIANTS = (
    ("before", False, "sequential"),
    ("fused", True, "sequential"),
    ("models", True, "models"),
    ("overlap", True, "overlap"),
    ("both", True, "both"),
    ("lanes", True, "lanes"),
    ("auto", True, "auto"),
)
QUICK_VARIANTS = ("before", "auto")  # a quick run (the demo's): the loop before and after


def variants(quick: bool) -> list[tuple[str, bool, str]]:
    return [v for v in VARIANTS if not quick or v[0] in QUICK_VARIANTS]


VIDEO_FPS = 30.0


def face_picture(fallback: Path | None) -> tuple[np.ndarray, str]:
    """An RGB picture of a face and where it came from."""
    if importlib.util.find_spec("skimage") is not None:
        from skimage import data

        return data.astronaut(), "scikit-image astronaut photograph"
    if fallback is not None:
        return read_image(fallback), f"labelled image {fallback.name}"
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (480, 480, 3), dtype=np.uint8), "random noise (no face)"


def write_benchmark_video(path: Path, frames: int, picture: np.ndarray) -> Path:
    """A 640x480 mp4 of `picture` (scaled to the frame height) drifting side to side."""
    side = FRAME_H
    face = cv2.resize(picture, (side, side), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter.fourcc(*"mp4v"), VIDEO_FPS, (FRAME_W, FRAME_H)
    )
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write mp4v video here")
    travel = FRAME_W - side
    try:
        for i in range(frames):
            x = int(travel / 2 + travel / 2 * np.sin(i / 15.0))
            canvas = np.full((FRAME_H, FRAME_W, 3), 90, np.uint8)
            canvas[:, x : x + side] = face
            writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def run_pipeline_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """In the worker: run the live loop on the video with one format; FPS and stages."""
    t0 = time.perf_counter()
    from hemiface.runtime.backends import default_num_threads, physical_cores
    from hemiface.runtime.detectors import open_detector
    from hemiface.runtime.live import Candidate, choose_live_mode
    from hemiface.runtime.modelset import ModelSet, load_model_set
    from hemiface.runtime.pipeline import StreamSettings, run_stream
    from hemiface.runtime.sources import VideoFileSource

    detector = open_detector(Path(spec["model_set"]), spec.get("detector"), stream=True)

    def open_set(candidate: Candidate) -> ModelSet:
        return load_model_set(
            Path(spec["model_set"]),
            spec["format"],
            only=spec.get("models"),
            num_threads=candidate.threads,
            fuse=spec.get("fuse", True),
            concurrency=candidate.concurrency,
        )

    plan, model_set = choose_live_mode(
        open_set,
        detector,
        (FRAME_W, FRAME_H),
        spec.get("mode", "sequential"),
        default_num_threads(),
        spec.get("threads"),
        cores=physical_cores(),
        lanes_possible=True,  # the detector runs on every frame here
    )
    candidate = plan.candidate

    def open_lane() -> tuple[ModelSet, Any]:
        lane_detector = open_detector(Path(spec["model_set"]), spec.get("detector"), stream=True)
        return open_set(candidate), lane_detector

    t1 = time.perf_counter()
    stamps: list[float] = []
    with_face = 0

    def on_result(result: Any) -> None:
        nonlocal with_face
        stamps.append(time.perf_counter())
        with_face += result.box is not None

    start = time.perf_counter()
    stats = run_stream(
        VideoFileSource(Path(spec["video"])),
        model_set,
        StreamSettings(
            crop="face",
            every=1,
            max_frames=spec.get("frames"),
            overlap=candidate.overlap,
            lanes=candidate.lanes,
        ),
        on_result=on_result,
        detector=detector,
        open_lane=open_lane,
    )
    model_set.close()
    intervals = np.diff(np.asarray([start, *stamps])) * 1000.0
    return {
        "init_s": t1 - t0,
        "frames": stats.frames,
        "seconds": stats.seconds,
        "fps": stats.fps,
        "frames_with_face": with_face,
        "predicted": stats.predicted,
        "stage_ms": stats.stage_ms,
        "ceiling_fps": stats.ceiling_fps(physical_cores()),
        "models": len(model_set.entries),
        "interpreters": model_set.interpreters,
        "layout": model_set.describe(),
        "mode": plan.mode,
        "mode_reason": plan.reason,
        "mode_ms_per_frame": plan.ms_per_frame,
        "threads": model_set.num_threads,
        "backend": model_set.backend_label,
        "detector": detector.name,
        "frame_ms": [round(float(v), 3) for v in intervals],
        "first_prediction_at": time.time(),
    }


@dataclass
class PipelinePlan:
    """What the pipeline section runs: the set's models and formats on a video (the given
    one, or one made of a face picture), `frames` frames each, quick or every variant."""

    model_set: Path
    models: list[str]
    formats: list[str]
    frames: int
    video: Path | None = None
    fallback_image: Path | None = None
    timeout_s: float = 900.0
    quick: bool = False


def run_pipeline_section(plan: PipelinePlan, work: Path, step: Step | None) -> PipelineSection:
    from hemiface.benchmarks.latency import run_worker

    video = plan.video
    if video is None:
        picture, origin = face_picture(plan.fallback_image)
        video = write_benchmark_video(work / "pipeline_640x480.mp4", plan.frames, picture)
    else:
        origin = f"given video {video}"
    rows = []
    for fmt in plan.formats:
        for variant, fuse, mode in variants(plan.quick):
            if step:
                step(f"pipeline {fmt} {variant}")
            spec = {
                "engine": "pipeline",
                "model_set": str(plan.model_set),
                "format": fmt,
                "models": plan.models,
                "video": str(video),
                "frames": plan.frames,
                "fuse": fuse,
                "mode": mode,
            }
            rows.append(_pipeline_row(fmt, variant, fuse, run_worker(spec, plan.timeout_s)))
    return PipelineSection(
        "ok",
        video=str(video) if video.parent != work else "generated 640x480 mp4",
        video_content=origin,
        frame_size=[FRAME_W, FRAME_H],
        rows=rows,
    )


def _pipeline_row(fmt: str, variant: str, fuse: bool, result: dict[str, Any]) -> PipelineRow:
    if not result.get("ok"):
        return PipelineRow(fmt, variant, fuse, "failed", error=result.get("error"))
    figures = {k: v for k, v in result.items() if k not in ("ok", "first_prediction_at")}
    row = PipelineRow.from_json(
        {"format": fmt, "variant": variant, "fuse": fuse, "status": "ok", **figures}
    )
    if row.frame_ms:
        summary = summarize_ms(row.frame_ms)
        row.median_ms, row.p90_ms = summary.median_ms, summary.p90_ms
    return row
