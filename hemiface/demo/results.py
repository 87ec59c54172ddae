"""What each demo stage produces, as typed records.

Each record turns into the plain JSON written to demo.json and to the stage cache
(`to_json`), and back (`load`, for a cached stage). Loading is strict: a missing, unknown
or mistyped field raises `ResultFormatError` naming it, so a stage and its readers cannot
drift apart silently.
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from hemiface.benchmarks.detector_records import FaceFinds  # the bench's own record

T = TypeVar("T")


class ResultFormatError(ValueError):
    """A stage record in JSON does not have the fields its type has."""


def _load_value(kind: Any, value: Any, where: str) -> Any:
    if kind is Any:
        return value
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = get_args(kind)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _load_value(inner, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ResultFormatError(f"{where}: expected a list, found {type(value).__name__}")
        (item,) = get_args(kind)
        return [_load_value(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ResultFormatError(f"{where}: expected an object, found {type(value).__name__}")
        _, item = get_args(kind)
        return {k: _load_value(item, v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return load(kind, value, where)
    accepted: tuple[type, ...] = (int, float) if kind is float else (kind,)
    if isinstance(value, bool) and kind is not bool or not isinstance(value, accepted):
        raise ResultFormatError(f"{where}: expected {kind.__name__}, found {value!r}")
    return value


def load(kind: type[T], data: Any, where: str = "$") -> T:
    """A `kind` record from its JSON form; refuses missing, unknown and mistyped fields."""
    if not isinstance(data, dict):
        raise ResultFormatError(f"{where}: expected an object, found {type(data).__name__}")
    hints = get_type_hints(kind)
    known = {f.name: f for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ResultFormatError(f"{where}: unknown field(s) {', '.join(unknown)}")
    values = {}
    for name, spec in known.items():
        if name in data:
            values[name] = _load_value(hints[name], data[name], f"{where}.{name}")
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ResultFormatError(f"{where}: missing field {name!r}")
    return kind(**values)


@dataclass
class StageOutput:
    """Base of every stage's record."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls: type[T], data: Any) -> T:
        return load(cls, data)


@dataclass
class DataOutput(StageOutput):
    images: int
    cached: bool | None = None  # True when an earlier run's images were reused
    images_per_s: float | None = None  # rendering speed, when rendered in this run
    seconds: float | None = None
    folder: str = ""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class Backbone:
    """The shared MobileNetV2 backbone's pretraining, as the training summary records it."""

    recipe: str
    steps: int
    images_seen: int
    train_time_s: float
    val_accuracy_224: float | None
    val_accuracy_by_stage: dict[str, float]


@dataclass
class HeldoutMetrics:
    accuracy: float
    roc_auc: float | None
    flip_consistency: float


@dataclass
class TrainOutput(StageOutput):
    origin: str
    recipe: str
    command: str
    backbone: Backbone
    heldout_seed: int
    heldout_images: int
    heldout: dict[str, HeldoutMetrics]  # model name -> figures on the held-out set
    wall_time_s: float
    folder: str


@dataclass
class ConvertRow:
    model: str
    format: str
    size_mb: float
    size_ratio: float
    agreement: float | None
    max_abs_dp: float | None
    accuracy: float | None
    latency_ms: float | None
    min_runtime: str
    loads_in: dict[str, str]
    status: str  # "passed" or "failed: " and the problems


@dataclass
class ConvertOutput(StageOutput):
    rows: list[ConvertRow]
    seconds: float
    manifest: str
    timing: str  # where convert's time went (workers, steps, peak memory)


@dataclass
class RuntimeOutput(StageOutput):
    format: str
    format_reason: str
    images: int
    image_accuracy: float | None
    figures: list[str]
    video: str
    recording: str
    frames: int
    frames_with_prediction: int
    no_face_frames: int
    fps: float
    video_accuracy: float | None
    video_accuracy_by_model: dict[str, float | None]  # model title -> frame accuracy
    stage_ms: dict[str, float]
    face_detector: str
    face_detection: FaceFinds | None  # faces found by size and skin tone, per detector


@dataclass
class ExplainedModel:
    model: str
    p_right: float
    predicted: str
    explained: str
    completeness_error: float | None
    steps: int
    laterality: str | None  # the side the attribution points to
    mask_ratio: float | None


@dataclass
class ExplainedImage:
    image: str
    figure: str | None
    json: str | None
    models: list[ExplainedModel]
    seconds: dict[str, float]


@dataclass
class ExplainOutput(StageOutput):
    images: dict[str, ExplainedImage] = field(default_factory=dict)  # true label -> image

    def to_json(self) -> dict[str, Any]:
        return {truth: dataclasses.asdict(item) for truth, item in self.images.items()}

    @classmethod
    def from_json(cls, data: Any) -> ExplainOutput:
        return cls(_load_value(dict[str, ExplainedImage], data, "$"))


@dataclass
class BenchOutput(StageOutput):
    files: list[str]
    report: str
