"""The rows of results.json as typed records, and how they are read and written.

The sections (sections.py) hold these rows; `to_json` gives the JSON written to
results.json (the form schema.py describes) and `make` reads a row back for report.md
and the demo's walk-through. Reading is strict: a row with a missing or unknown field
raises `RowFormatError` naming it, so a section that starts writing other fields cannot
drift away from its readers silently.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
_OMIT = {"omit_when_none": True}


class RowFormatError(ValueError):
    """A results.json row does not have the fields its record has."""


def optional(default: Any = None) -> Any:
    """A field that results.json leaves out when it is None (a section's figures that
    only an "ok" section has, or the reason only a skipped one has)."""
    return field(default=default, metadata=_OMIT)


def make(kind: type[T], data: Any, where: str) -> T:
    """A flat record from its JSON object; refuses missing and unknown fields."""
    if not isinstance(data, dict):
        raise RowFormatError(f"{where}: expected an object, found {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise RowFormatError(f"{where}: unknown field(s) {', '.join(unknown)}")
    missing = [
        name
        for name, spec in fields.items()
        if name not in data
        and spec.default is dataclasses.MISSING
        and spec.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise RowFormatError(f"{where}: missing field(s) {', '.join(missing)}")
    return kind(**data)


def make_all(kind: type[T], items: Any, where: str) -> list[T]:
    if not isinstance(items, list):
        raise RowFormatError(f"{where}: expected a list, found {type(items).__name__}")
    return [make(kind, item, f"{where}[{i}]") for i, item in enumerate(items)]


def to_json(record: Any) -> Any:
    """A record (or a list or dict of them) as JSON values, in field order, leaving out
    the optional fields that are None."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        custom = getattr(record, "to_json", None)
        if custom is not None:
            return custom()
        return fields_json(record)
    if isinstance(record, list):
        return [to_json(item) for item in record]
    if isinstance(record, dict):
        return {key: to_json(value) for key, value in record.items()}
    return record


def fields_json(record: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {}
    for spec in dataclasses.fields(record):
        value = getattr(record, spec.name)
        if spec.name in skip or (value is None and spec.metadata.get("omit_when_none")):
            continue
        out[spec.name] = to_json(value)
    return out


@dataclass
class LatencyRow:
    """One (model, engine, format, threads) row: identity, status and figures (None
    where not measured)."""

    model: str
    title: str
    engine: str  # keras_predict | keras_call | tflite
    format: str | None
    engine_label: str
    threads: int
    status: str  # ok | failed
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
class MachineRow:
    """Float32 GEMM throughput at one thread count: the machine's yardstick."""

    threads: int
    status: str
    error: str | None
    gmacs_per_s: float | None


@dataclass
class SpeedupOverPredict:
    model: str
    threads: int
    engine_label: str
    speedup: float


@dataclass
class SpeedupOverFloat32:
    model: str
    threads: int
    format: str
    speedup: float


@dataclass
class SetRow:
    """One configuration of the whole set: format, fused or separate, sequential or in
    threads, interpreter threads; toolkit and bare timings (LatencySummary fields)."""

    format: str
    fused: bool
    concurrency: str  # sequential | threads
    threads: int
    interpreters: int
    layout: str
    p: list[float]
    toolkit: dict[str, float]
    bare: dict[str, float]
    overhead_pct: float | None = None
    vs_reference: float | None = None
    bare_vs_reference: float | None = None


@dataclass
class PipelineRow:
    """One live-loop variant on one format; a failed row has its error and no figures."""

    format: str
    variant: str
    fuse: bool
    status: str  # ok | failed
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

    def to_json(self) -> dict[str, Any]:
        if self.status != "ok":
            return {"format": self.format, "variant": self.variant, "fuse": self.fuse,
                    "status": self.status, "error": self.error}  # fmt: skip
        return fields_json(self, skip=("error",))


@dataclass
class DelegationRow:
    """How XNNPACK partitions one artifact here; a failed row has its error instead."""

    artifact: str
    format: str
    file: str
    status: str  # ok | failed
    error: str | None = None
    partitions: int | None = None
    undelegated_ops: list[str] | None = None
    recorded_partitions: int | None = None

    def to_json(self) -> dict[str, Any]:
        if self.status != "ok":
            return fields_json(self, skip=("partitions", "undelegated_ops", "recorded_partitions"))
        return fields_json(self, skip=("error",))


@dataclass
class AgreementPair:
    """A converted variant against its Keras source on the labelled images."""

    model: str
    format: str
    n: int
    label_agreement: float
    flips: int
    mean_abs_dp: float
    p99_abs_dp: float
    max_abs_dp: float
    abs_dp: list[float] = field(default_factory=list)


@dataclass
class QualityRow:
    model: str
    variant: str
    n: int
    accuracy: float
    roc_auc: float | None
    ece: float
    flip_consistency: float
    mean_p: float
