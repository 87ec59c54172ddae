"""What a conversion produced: one row per model and format, and the run's summary."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hemiface.runtime.manifest import Verification


@dataclass
class ConversionRow:
    name: str
    title: str
    format: str
    file: str
    sha256: str
    size_bytes: int
    source_bytes: int
    seconds: float  # conversion time (0 when reused)
    reused: bool
    min_runtime: str
    loads_in: dict[str, str]
    verification: Verification | None
    passed: bool
    problems: list[str] = field(default_factory=list)

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 1e6

    @property
    def size_ratio(self) -> float:
        return self.size_bytes / self.source_bytes if self.source_bytes else 0.0


@dataclass
class Timing:
    """Where a run's time went. `steps`: the run's own steps, wall seconds (load models,
    images, export (inside "artifacts": each model is exported just before its first job
    is handed out), keras, artifacts, publish). `artifact_steps`: the artifacts' steps
    (convert, ops, load, load_elsewhere, run), seconds summed over every artifact, so with
    several workers they add up to more than the wall time of "artifacts"."""

    workers: int
    steps: dict[str, float]
    artifact_steps: dict[str, float]
    peak_rss_mb: float  # this process
    peak_worker_rss_mb: float | None  # the largest worker process, when there were workers

    def describe(self) -> str:
        """E.g. "2 workers; load models 3.1 s, ...; in the artifacts: convert 80.2 s, ..."."""
        own = ", ".join(f"{k} {v:.1f} s" for k, v in self.steps.items())
        inner = ", ".join(
            f"{k.replace('_', ' ')} {v:.1f} s" for k, v in self.artifact_steps.items()
        )
        memory = f"peak RSS {self.peak_rss_mb:.0f} MB"
        if self.peak_worker_rss_mb is not None:
            memory += f" (largest worker {self.peak_worker_rss_mb:.0f} MB)"
        workers = f"{self.workers} worker{'s' if self.workers != 1 else ''}"
        return f"{workers}; {own}; summed over the artifacts: {inner}; {memory}"


@dataclass
class ConversionSummary:
    out: Path
    manifest: Path
    rows: list[ConversionRow]
    calibration: str | None
    verification: str | None
    notes: list[str]
    seconds: float
    load_failures: list[str] = field(default_factory=list)  # one line per model not loaded
    timing: Timing | None = None

    @property
    def failed(self) -> bool:
        return bool(self.load_failures) or any(not row.passed for row in self.rows)

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for row in self.rows:
            data = dataclasses.asdict(row)
            data["size_mb"] = round(row.size_mb, 4)
            data["size_ratio"] = round(row.size_ratio, 4)
            rows.append(data)
        return {
            "out": str(self.out),
            "manifest": str(self.manifest),
            "failed": self.failed,
            "calibration": self.calibration,
            "verification": self.verification,
            "notes": self.notes,
            "load_failures": self.load_failures,
            "seconds": round(self.seconds, 2),
            "rows": rows,
            "timing": dataclasses.asdict(self.timing) if self.timing else None,
        }
