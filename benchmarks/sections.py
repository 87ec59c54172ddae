"""The sections of results.json and the record of a whole run, built from the typed
rows of rows.py; `BenchResults.to_json()` is what results.json holds and
`BenchResults.from_json` reads one back (strictly, see rows.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hemiface.benchmarks.rows import (
    AgreementPair,
    DelegationRow,
    LatencyRow,
    MachineRow,
    PipelineRow,
    QualityRow,
    SetRow,
    SpeedupOverFloat32,
    SpeedupOverPredict,
    fields_json,
    make,
    make_all,
    optional,
)


@dataclass
class LatencySection:
    status: str  # ok | skipped
    reason: str | None = optional()
    rows: list[LatencyRow] = field(default_factory=list)
    machine_reference: list[MachineRow] | None = optional()
    speedup_over_predict: list[SpeedupOverPredict] | None = optional()
    speedup_over_float32: list[SpeedupOverFloat32] | None = optional()
    skipped: list[str] | None = optional()  # rows left out, and why

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LatencySection:
        where = "latency"
        section = make(cls, data, where)
        section.rows = make_all(LatencyRow, data["rows"], f"{where}.rows")
        if "machine_reference" in data:
            section.machine_reference = make_all(
                MachineRow, data["machine_reference"], f"{where}.machine_reference"
            )
        if "speedup_over_predict" in data:
            section.speedup_over_predict = make_all(
                SpeedupOverPredict, data["speedup_over_predict"], f"{where}.speedup_over_predict"
            )
        if "speedup_over_float32" in data:
            section.speedup_over_float32 = make_all(
                SpeedupOverFloat32, data["speedup_over_float32"], f"{where}.speedup_over_float32"
            )
        return section


@dataclass
class SetSection:
    status: str  # ok | skipped | failed
    reason: str | None = optional()
    reference: str | None = optional()
    rounds: int | None = optional()
    rows: list[SetRow] = field(default_factory=list)
    peak_rss_mb: float | None = optional()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SetSection:
        section = make(cls, data, "set")
        section.rows = make_all(SetRow, data["rows"], "set.rows")
        return section


@dataclass
class PipelineSection:
    status: str  # ok | skipped
    reason: str | None = optional()
    video: str | None = optional()
    video_content: str | None = optional()
    frame_size: list[int] | None = optional()
    rows: list[PipelineRow] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PipelineSection:
        section = make(cls, data, "pipeline")
        section.rows = make_all(PipelineRow, data["rows"], "pipeline.rows")
        return section


@dataclass
class DelegationSection:
    status: str
    reason: str | None = optional()
    backend: str | None = optional()
    rows: list[DelegationRow] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DelegationSection:
        section = make(cls, data, "delegation")
        section.rows = make_all(DelegationRow, data["rows"], "delegation.rows")
        return section


@dataclass
class AgreementSection:
    status: str  # ok | skipped | failed
    reason: str | None = optional()
    data_dir: str | None = optional()
    n_images: int | None = optional()
    n_positive: int | None = optional()
    threshold: float | None = optional()
    vs_source: list[AgreementPair] | None = optional()
    quality: list[QualityRow] | None = optional()
    between_models: list[dict[str, Any]] | None = optional()
    failures: list[dict[str, str]] | None = optional()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgreementSection:
        section = make(cls, data, "agreement")
        if "vs_source" in data:
            section.vs_source = make_all(AgreementPair, data["vs_source"], "agreement.vs_source")
        if "quality" in data:
            section.quality = make_all(QualityRow, data["quality"], "agreement.quality")
        return section


@dataclass
class ModelRecord:
    """A model of the run, with the sha256 of its Keras source and its artifacts."""

    name: str
    title: str
    formats: list[str]
    keras_source: str | None
    keras_sha256: str | None = None
    tflite_sha256: dict[str, str] = field(default_factory=dict)


@dataclass
class BenchSettings:
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


@dataclass
class BenchResults:
    """Every figure of one `hemiface bench` run: what results.json holds."""

    schema_version: int
    command: str
    argv: list[str]
    created_utc: str
    machine: dict[str, Any]  # the machine's facts as `hemiface info` collects them
    settings: BenchSettings
    models: list[ModelRecord]
    latency: LatencySection
    delegation: DelegationSection
    set: SetSection
    pipeline: PipelineSection
    agreement: AgreementSection
    headline: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def titles(self) -> dict[str, str]:
        """Model name -> title."""
        return {m.name: m.title for m in self.models}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchResults:
        """A results.json's content. A section an older run did not measure (set,
        delegation) reads as skipped."""
        not_measured = {"status": "skipped", "reason": "not measured", "rows": []}
        results = make(cls, {**{"set": None, "delegation": None}, **data}, "results")
        results.settings = make(BenchSettings, data["settings"], "settings")
        results.models = make_all(ModelRecord, data["models"], "models")
        results.latency = LatencySection.from_json(data["latency"])
        results.delegation = DelegationSection.from_json(data.get("delegation", not_measured))
        results.set = SetSection.from_json(data.get("set", not_measured))
        results.pipeline = PipelineSection.from_json(data["pipeline"])
        results.agreement = AgreementSection.from_json(data["agreement"])
        return results

    def to_json(self) -> dict[str, Any]:
        return fields_json(self)
