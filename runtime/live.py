"""How the live loop uses the cores, chosen by measuring on the machine that runs it.

A frame's work is the face step (detector, crop) and the models. Three ways to spread it:
- "models": the model set's interpreters run at once, one thread each (their invoke
  releases the GIL), instead of one after the other;
- "overlap": the next frame's face step runs while the models work on this frame;
- "both".
"sequential" is one thing after another, each interpreter with the default threads;
- "lanes": one frame a core, side by side, each lane with its own interpreters (one
  thread each) and detector, results in frame order (see runtime.lanes).

On a machine with two or more cores, and a detector run on every frame, `auto` takes
"lanes" without timing anything: the frames are independent, so k lanes keep k cores busy
with no synchronisation inside a frame, while the other modes leave the largest stage
(the models) on one core or split one invoke across cores. A start-up timing of a few
frames on a shared machine could not tell these apart reliably; `hemiface bench` measures
every mode, and the loop's own stage times give the ceiling it is held to.

`choose_live_mode` times each candidate on a synthetic frame and a fixed crop (the work
a frame with a face costs), interleaving the candidates over a few rounds so that a busy
moment on the machine does not decide, and keeps the one with the shortest median time a
frame. The frame is smooth shading with a face-sized bright oval, not noise: the Haar
cascade spends far longer on noise than on a camera's frame. The probe stays within about
`PROBE_BUDGET_S`: on a slow or busy machine it times fewer frames a round.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.face import Detector, center_crop
from hemiface.runtime.modelset import ModelSet
from hemiface.runtime.options import HAAR_EVERY, ModelSetOptions
from hemiface.runtime.stream_stages import StreamSettings

LIVE_MODES = ("sequential", "models", "overlap", "both", "lanes")
MAX_LANES = 4
CHOICES = ("auto", *LIVE_MODES)
ROUNDS = 3
FRAMES_PER_ROUND = 8
PROBE_BUDGET_S = 2.0


@dataclass(frozen=True)
class Candidate:
    mode: str  # one of LIVE_MODES
    threads: int  # interpreter threads of each model interpreter
    lanes: int = 1  # frames processed side by side ("lanes" only)

    @property
    def label(self) -> str:
        threads = f"{self.threads} thread{'s' if self.threads > 1 else ''}"
        if self.mode == "lanes":
            return f"lanes, {self.lanes} frames side by side, {threads} each"
        return f"{self.mode}, {threads}"

    @property
    def concurrency(self) -> str:
        return "threads" if self.mode in ("models", "both") else "sequential"

    @property
    def overlap(self) -> bool:
        return self.mode in ("overlap", "both")


@dataclass
class LivePlan:
    candidate: Candidate
    reason: str
    ms_per_frame: dict[str, float] = field(default_factory=dict)  # label -> median ms

    @property
    def mode(self) -> str:
        return self.candidate.mode


def candidates(
    default_threads: int,
    mode: str = "auto",
    fixed_threads: int | None = None,
    cores: int = 1,
    lanes_possible: bool = False,
) -> list[Candidate]:
    """What to try: with `auto` on two or more cores and `lanes_possible`, "lanes" alone
    (see the module's docstring); otherwise "sequential" with the default threads and the
    concurrent modes with one thread per interpreter (the cores go to interpreters running
    side by side); every candidate with `fixed_threads` when the user chose the threads."""
    lanes = Candidate("lanes", fixed_threads or 1, max(2, min(cores, MAX_LANES)))
    if mode == "lanes" or (mode == "auto" and lanes_possible and cores >= 2):
        return [lanes] if lanes_possible else []
    timed = [m for m in LIVE_MODES if m != "lanes"]
    if fixed_threads is not None:
        return [Candidate(m, fixed_threads) for m in timed if mode in ("auto", m)]
    every = [Candidate("sequential", default_threads)]
    if default_threads > 1:
        every.append(Candidate("sequential", 1))
    every += [Candidate(m, 1) for m in ("models", "overlap", "both")]
    if mode == "auto":
        return every
    return [c for c in every if c.mode == mode][:1]


def probe_frame(width: int, height: int) -> np.ndarray:
    """An RGB frame like a camera's in its statistics: smooth shading, a bright oval."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    shade = 60.0 + 80.0 * x / max(1, width - 1) + 40.0 * y / max(1, height - 1)
    cx, cy, rx, ry = width / 2, height / 2, width / 6, height / 4
    oval = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0
    grey = np.where(oval, 190.0, shade)
    rgb = np.stack([grey, grey * 0.85, grey * 0.75], axis=-1)
    clipped: np.ndarray = np.clip(rgb, 0, 255)
    return clipped.astype(np.uint8)


def _frame_time(
    model_set: ModelSet,
    face: Callable[[np.ndarray], object],
    frame: np.ndarray,
    crop: np.ndarray,
    overlap: bool,
    pool: ThreadPoolExecutor,
    frames: int,
) -> float:
    """Mean seconds a frame over `frames` frames of face step + models."""
    started = time.perf_counter()
    for _ in range(frames):
        if overlap:
            pending = pool.submit(face, frame)
            model_set.probabilities(crop)
            pending.result()
        else:
            face(frame)
            model_set.probabilities(crop)
    return (time.perf_counter() - started) / frames


def choose_live_mode(
    open_set: Callable[[Candidate], ModelSet],
    detector: Detector | None,
    frame_size: tuple[int, int] = (640, 480),
    mode: str = "auto",
    default_threads: int = 2,
    fixed_threads: int | None = None,
    rounds: int = ROUNDS,
    frames: int = FRAMES_PER_ROUND,
    cores: int = 1,
    lanes_possible: bool = False,
) -> tuple[LivePlan, ModelSet]:
    """The fastest way to run the live loop here, and the model set opened for it.

    `open_set(candidate)` opens the model set with the candidate's threads and
    concurrency (for "lanes", the first lane's). With `mode` other than "auto", or when
    "lanes" is possible on `cores` >= 2, nothing is measured. "lanes" is possible when
    every frame stands alone: the detector runs on every frame (or there is none).
    """
    if mode not in CHOICES:
        raise ValueError(f"live mode must be one of {', '.join(CHOICES)}")
    tried = candidates(default_threads, mode, fixed_threads, cores, lanes_possible)
    if not tried:
        raise HemifaceError(
            "--concurrency lanes needs every frame to stand alone: the detector on every "
            "frame (--every 1)"
        )
    if len(tried) == 1:
        reason = (
            "asked for"
            if mode != "auto"
            else (f"{cores} cores: one frame a core, {tried[0].lanes} side by side")
        )
        return LivePlan(tried[0], reason), open_set(tried[0])
    width, height = frame_size
    frame = probe_frame(width, height)
    crop = np.ascontiguousarray(center_crop(frame))

    def face(rgb: np.ndarray) -> object:
        return detector.detect(rgb) if detector is not None else None

    sets = {c: open_set(c) for c in tried}
    times: dict[Candidate, list[float]] = {c: [] for c in tried}
    with ThreadPoolExecutor(1, thread_name_prefix="hemiface-probe") as pool:
        # Warm-up (first invokes allocate and pack weights), which also says how long a
        # frame takes here, so that the rounds fit the budget.
        slowest = max(_frame_time(sets[c], face, frame, crop, c.overlap, pool, 2) for c in tried)
        affordable = int(PROBE_BUDGET_S / max(1e-6, slowest * rounds * len(tried)))
        frames = max(2, min(frames, affordable))
        for _ in range(rounds):
            for c in tried:
                times[c].append(_frame_time(sets[c], face, frame, crop, c.overlap, pool, frames))
    medians = {c: statistics.median(v) * 1000.0 for c, v in times.items()}
    best = min(tried, key=lambda c: medians[c])
    for c, model_set in sets.items():
        if c != best:
            model_set.close()
    baseline = medians[tried[0]]
    reason = (
        f"measured here: {medians[best]:.1f} ms a frame against {baseline:.1f} ms "
        f"{tried[0].label} ({baseline / medians[best]:.2f}x)"
        if best != tried[0]
        else f"measured here: {medians[best]:.1f} ms a frame, fastest of {len(tried)}"
    )
    plan = LivePlan(best, reason, {c.label: round(m, 3) for c, m in medians.items()})
    return plan, sets[best]


@dataclass
class LiveStart:
    """What `run` and `serve` start the loop with: the mode chosen, the first lane's model
    set and detector, the settings completed by both, and how a further lane opens."""

    plan: LivePlan
    model_set: ModelSet
    detector: Detector | None
    settings: StreamSettings
    open_lane: Callable[[], tuple[ModelSet, Detector | None]]


def start_live(
    options: ModelSetOptions,
    settings: StreamSettings,
    every: int | None,
    frame_size: tuple[int, int],
    mode: str,
) -> LiveStart:
    """Open the detector (crop "face") and the model set in the live mode `mode` chooses
    here; `every` None means the detector's own default (the Haar cascade every
    HAAR_EVERY frames, BlazeFace every frame)."""
    from hemiface.runtime.backends import default_num_threads, physical_cores

    face = settings.crop == "face"
    finder = options.open_detector(stream=True) if face else None
    if every is None:
        every = HAAR_EVERY if finder is not None and finder.name == "haar" else 1
    plan, model_set = choose_live_mode(
        lambda c: options.open(c.threads, c.concurrency),
        finder,
        frame_size,
        mode,
        default_num_threads(),
        options.threads,
        cores=physical_cores(),
        lanes_possible=not face or every == 1,
    )
    chosen = plan.candidate

    def open_lane() -> tuple[ModelSet, Detector | None]:
        lane_detector = options.open_detector(stream=True) if face else None
        return options.open(chosen.threads, chosen.concurrency), lane_detector

    completed = dataclasses.replace(
        settings, every=every, overlap=chosen.overlap, lanes=chosen.lanes
    )
    return LiveStart(plan, model_set, finder, completed, open_lane)
