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
class ConversionSummary:
    out: Path
    manifest: Path
    rows: list[ConversionRow]
    calibration: str | None
    verification: str | None
    notes: list[str]
    seconds: float
    load_failures: list[str] = field(default_factory=list)  # one line per model not loaded

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
        }
