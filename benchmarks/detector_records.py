"""The records of the bench's "detectors" section (benchmarks/face_detection.py): faces
found by face size and skin tone, times, the default search's steps, the live loop. They
are part of results.json (sections.BenchResults.detectors) and read back as strictly."""

from __future__ import annotations

from dataclasses import dataclass, field

from hemiface.benchmarks.record import Record, SectionStatus, optional


@dataclass
class Finds(Record):
    """Faces found by each detector among `faces` faces."""

    faces: int
    found: dict[str, int]  # detector name -> faces found
    rate: dict[str, float]


@dataclass
class SkinToneBand(Finds):
    """Faces found by each detector in one band of skin luminance (0-255)."""

    luminance_low: float = 0.0
    luminance_high: float = 0.0


@dataclass
class FaceSizeBand(Finds):
    """Faces found by each detector in one band of true face-box height, in frame pixels."""

    height_low: int = 0
    height_high: int = 0


@dataclass
class SizeToneCell(Finds):
    """Faces found by each detector in one face-size band and one skin-tone quartile."""

    size_band: int = 0  # index into FaceFinds.size_bands
    skin_band: int = 0  # index into FaceFinds.skin_tone_bands


@dataclass
class FaceFinds(Record):
    """Faces found by each detector on synthetic faces of known place and size: by face-size
    band, by skin-tone quartile (equal-count over the set) and by both. A face counts as
    found when the centre of the box `detect` returns lies inside the true face box."""

    seed: int
    frame_size: list[int]
    faces: int
    detectors: list[str]
    found: dict[str, int]
    rate: dict[str, float]
    size_bands: list[FaceSizeBand]
    skin_tone_bands: list[SkinToneBand]
    cells: list[SizeToneCell]


@dataclass
class DetectorTiming(Record):
    median_ms: float
    p90_ms: float
    calls: int


@dataclass
class SearchSteps(Record):
    """The default search (short range, near the last face, full range, tiles): which step
    found the face, and the time of its `detect` calls by how far the search went."""

    steps: list[str]  # the search's steps, in order
    face_steps: dict[str, int]  # step that found a face on the face frames ("none": nothing)
    face_free_steps: dict[str, int]  # the same on the face-free scenes
    tiles_ran: int  # frames, of either kind, where the tiles step ran
    frames: int  # face frames and face-free scenes
    short_ms: DetectorTiming | None  # face frames where the short step found a face
    later_ms: DetectorTiming | None  # face frames where it did not (later steps ran)
    face_free_ms: DetectorTiming | None  # face-free scenes


@dataclass
class PhotoFind(Record):
    found: bool
    box: list[int] | None
    roll_deg: float | None = optional()


@dataclass
class VideoFinds(Record):
    frames: int
    found: dict[str, int]
    seconds: float
    fps: float
    seed: int


@dataclass
class DetectorLoop(Record):
    """The live loop with one detector: mean of the rounds."""

    frames: int
    predicted: int
    fps: float
    fps_rounds: list[float]
    face_ms: float
    models_ms: float


@dataclass
class DetectorLoops(Record):
    format: str
    models: int
    threads: int
    rounds: int
    detectors: dict[str, DetectorLoop]


@dataclass
class DetectorsSection(Record):
    """The face detectors side by side: faces found by face size and skin tone, false
    detections on face-free scenes, time a frame, the default search's steps, a real
    photograph, the demo's video and the live loop with each."""

    status: SectionStatus
    reason: str | None = optional()
    detectors: list[str] = field(default_factory=list)
    frame_size: list[int] | None = optional()
    finds: FaceFinds | None = optional()
    face_free_frames: int | None = optional()
    face_free_seed: int | None = optional()
    false_detections: dict[str, int] | None = optional()
    threads: int | None = optional()
    timing: dict[str, DetectorTiming] | None = optional()  # detect calls on face frames
    face_free_timing: dict[str, DetectorTiming] | None = optional()
    time_ratio_blazeface_to_haar: float | None = optional()  # medians on face frames
    search: SearchSteps | None = optional()
    astronaut: dict[str, PhotoFind] | None = optional()
    demo_video: VideoFinds | None = optional()
    live_loop: DetectorLoops | None = optional()
