"""The typed records of results.json: one dataclass per result, the sections that hold
them and the record of a whole run. `BenchResults.to_json()` is what results.json holds
and `BenchResults.from_json` reads one back strictly (record.py); `validate` says whether
a results.json reads back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from hemiface.benchmarks.detector_records import DetectorsSection
from hemiface.benchmarks.record import Record, RowFormatError, SectionStatus, optional
from hemiface.benchmarks.stats import LatencySummary

SCHEMA_VERSION: Literal[1] = 1
Status = Literal["ok", "failed"]


@dataclass
class LatencyRow(Record):
    """One (model, engine, format, threads) row: identity, status and figures (None
    where not measured)."""

    model: str
    title: str
    engine: Literal["keras_predict", "keras_call", "tflite"]
    format: str | None
    engine_label: str
    threads: int
    status: Status
    error: str | None
    backend: str | None
    file_size_bytes: int | None
    n: int | None
    median_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    std_ms: float | None
    min_ms: float | None
    max_ms: float | None
    import_s: float | None
    init_s: float | None
    preprocess_s: float | None
    first_inference_s: float | None
    cold_start_s: float | None
    peak_rss_mb: float | None
    rss_ready_mb: float | None
    macs: int | None
    p: float | None
    delegate_partitions: int | None
    undelegated_ops: list[str] | None
    gmacs_per_s: float | None
    samples_ms: list[float]
    fraction_of_machine: float | None = None


@dataclass
class MachineRow(Record):
    """Float32 GEMM throughput at one thread count: the machine's yardstick."""

    threads: int
    status: Status
    error: str | None
    gmacs_per_s: float | None


@dataclass
class SpeedupOverPredict(Record):
    model: str
    threads: int
    engine_label: str
    speedup: float


@dataclass
class SpeedupOverFloat32(Record):
    model: str
    threads: int
    format: str
    speedup: float


@dataclass
class SetRow(Record):
    """One configuration of the whole set: format, fused or separate, sequential or in
    threads, interpreter threads; toolkit and bare timings."""

    format: str
    fused: bool
    concurrency: Literal["sequential", "threads"]
    threads: int
    interpreters: int
    layout: str
    p: list[float]
    toolkit: LatencySummary
    bare: LatencySummary
    overhead_pct: float | None = None
    vs_reference: float | None = None
    bare_vs_reference: float | None = None


@dataclass
class PipelineRow(Record):
    """One live-loop variant on one format; a failed row has its error and no figures."""

    format: str
    variant: str
    fuse: bool
    status: Status
    error: str | None = None
    init_s: float | None = None
    frames: int | None = None
    seconds: float | None = None
    fps: float | None = None
    frames_with_face: int | None = None
    predicted: int | None = None
    stage_ms: dict[str, float] | None = None
    models: int | None = None
    interpreters: int | None = None
    layout: str | None = None
    mode: str | None = None
    mode_reason: str | None = None
    mode_ms_per_frame: dict[str, float] | None = None
    threads: int | None = None
    backend: str | None = None
    detector: str | None = None
    frame_ms: list[float] | None = None
    peak_rss_mb: float | None = None
    cold_start_s: float | None = None
    median_ms: float | None = None
    p90_ms: float | None = None
    # The frame rate the machine's cores would reach at this run's own stage times.
    ceiling_fps: float | None = optional()

    def omitted(self) -> set[str]:
        if self.status == "ok":
            return {"error"}
        return {f for f in self.__dataclass_fields__ if f not in _IDENTITY["pipeline"]}


@dataclass
class DelegationRow(Record):
    """How XNNPACK partitions one artifact here; a failed row has its error instead."""

    artifact: str
    format: str
    file: str
    status: Status
    error: str | None = None
    partitions: int | None = None
    undelegated_ops: list[str] | None = None
    recorded_partitions: int | None = None

    def omitted(self) -> set[str]:
        if self.status == "ok":
            return {"error"}
        return {f for f in self.__dataclass_fields__ if f not in _IDENTITY["delegation"]}


_IDENTITY = {
    "pipeline": ("format", "variant", "fuse", "status", "error"),
    "delegation": ("artifact", "format", "file", "status", "error"),
}


@dataclass
class AgreementPair(Record):
    """Two probability vectors over the same images: a converted variant against its
    Keras source (model, format), or any two vectors (model and format left empty)."""

    model: str
    format: str
    n: int
    label_agreement: float  # share of images with the same thresholded label
    flips: int  # images whose label differs
    mean_abs_dp: float
    p99_abs_dp: float
    max_abs_dp: float
    abs_dp: list[float] = field(default_factory=list)


@dataclass
class QualityRow(Record):
    model: str
    variant: str
    n: int
    accuracy: float
    roc_auc: float | None
    ece: float
    flip_consistency: float
    mean_p: float


@dataclass
class ModelPair(Record):
    a: str
    b: str
    label_agreement: float
    kappa: float


@dataclass
class Ensemble(Record):
    """The models of one variant together (figures only for two models or more)."""

    models: list[str]
    mean_p_accuracy: float | None = None
    mean_p_roc_auc: float | None = None
    majority_accuracy: float | None = None

    def omitted(self) -> set[str]:
        return (
            set()
            if len(self.models) >= 2
            else {"mean_p_accuracy", "mean_p_roc_auc", "majority_accuracy"}
        )


@dataclass
class BetweenModels(Record):
    variant: str
    pairs: list[ModelPair]
    ensemble: Ensemble


@dataclass
class Failure(Record):
    item: str
    error: str


@dataclass
class Int8IORow(Record):
    """Full int8 with int8 or uint8 input/output: speed, partitions, agreement."""

    model: str
    title: str
    io: Literal["int8", "uint8"]
    bare_ms: float
    whole_ms: float
    pixels: str | None
    partitions: int | None
    undelegated_ops: list[str] | None
    agreement: float | None
    max_abs_dp: float | None
    n_images: int | None


@dataclass
class LatencySection(Record):
    status: SectionStatus
    reason: str | None = optional()
    rows: list[LatencyRow] = field(default_factory=list)
    machine_reference: list[MachineRow] | None = optional()
    speedup_over_predict: list[SpeedupOverPredict] | None = optional()
    speedup_over_float32: list[SpeedupOverFloat32] | None = optional()
    skipped: list[str] | None = optional()  # rows left out, and why
    # Rows timed in one shared process (the demo's profile): their cold start and peak
    # memory are not their own and are not reported.
    shared_process: bool | None = optional()


@dataclass
class SetSection(Record):
    status: SectionStatus
    reason: str | None = optional()
    reference: str | None = optional()
    rounds: int | None = optional()
    rows: list[SetRow] = field(default_factory=list)
    peak_rss_mb: float | None = optional()


@dataclass
class PipelineSection(Record):
    status: SectionStatus
    reason: str | None = optional()
    video: str | None = optional()
    video_content: str | None = optional()
    frame_size: list[int] | None = optional()
    rows: list[PipelineRow] = field(default_factory=list)


@dataclass
class DelegationSection(Record):
    status: SectionStatus
    reason: str | None = optional()
    backend: str | None = optional()
    rows: list[DelegationRow] = field(default_factory=list)


@dataclass
class AgreementSection(Record):
    status: SectionStatus
    reason: str | None = optional()
    data_dir: str | None = optional()
    n_images: int | None = optional()
    n_positive: int | None = optional()
    threshold: float | None = optional()
    vs_source: list[AgreementPair] | None = optional()
    quality: list[QualityRow] | None = optional()
    between_models: list[BetweenModels] | None = optional()
    failures: list[Failure] | None = optional()


@dataclass
class Int8IOSection(Record):
    status: SectionStatus
    reason: str | None = optional()
    rounds: int | None = optional()
    runs_per_round: int | None = optional()
    rows: list[Int8IORow] = field(default_factory=list)


@dataclass
class ModelRecord(Record):
    """A model of the run, with the sha256 of its Keras source and its artifacts."""

    name: str
    title: str
    formats: list[str]
    keras_source: str | None
    keras_sha256: str | None = None
    tflite_sha256: dict[str, str] = field(default_factory=dict)


@dataclass
class BenchSettings(Record):
    sections: list[str]
    models: list[str]
    formats: list[str]
    engines: list[str]
    threads: list[int]
    warmup: int
    n: int
    min_time_s: float
    max_time_s: float
    quick: bool
    tflite_dir: str
    keras_dir: str | None
    data_dir: str | None
    n_images: int
    backend: str | None
    profile: str | None = optional()  # "demo": the demo's short profile (bench.demo_config)


def _not_measured() -> Any:
    return {"status": "skipped", "reason": "not measured"}


@dataclass
class BenchResults(Record):
    """Every figure of one `hemiface bench` run: what results.json holds. A section an
    older run did not measure (set, delegation) reads as skipped; the optional studies
    (detectors, int8_io) are left out when not chosen."""

    schema_version: Literal[1]
    command: str
    argv: list[str]
    created_utc: str
    machine: dict[str, Any]  # machine.machine_facts(): `hemiface info`'s facts and more
    settings: BenchSettings
    models: list[ModelRecord]
    latency: LatencySection
    delegation: DelegationSection = field(
        default_factory=lambda: DelegationSection.from_json(_not_measured())
    )
    set: SetSection = field(default_factory=lambda: SetSection.from_json(_not_measured()))
    pipeline: PipelineSection = field(
        default_factory=lambda: PipelineSection.from_json(_not_measured())
    )
    agreement: AgreementSection = field(
        default_factory=lambda: AgreementSection.from_json(_not_measured())
    )
    detectors: DetectorsSection | None = optional()
    int8_io: Int8IOSection | None = optional()
    headline: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def titles(self) -> dict[str, str]:
        """Model name -> title."""
        return {m.name: m.title for m in self.models}


def validate(data: Any) -> list[str]:
    """Why `data` is not a results.json this version reads ([] when it is): the first
    missing, unknown or mistyped field, named by its path."""
    try:
        BenchResults.from_json(data)
    except RowFormatError as exc:
        return [str(exc)]
    return []
