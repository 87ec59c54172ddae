"""Write a results dict: results.json (read back as its records first), report.md, PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hemiface.benchmarks.report import render_report
from hemiface.benchmarks.sections import BenchResults, validate
from hemiface.core.errors import HemifaceError
from hemiface.runtime.manifest import atomic_write_bytes


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_outputs(results: dict[str, Any], out_dir: Path, plots: bool = True) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = _clean(results)
    problems = validate(results)
    if problems:
        raise HemifaceError(f"results do not match their records: {'; '.join(problems)}")
    json_path = out_dir / "results.json"
    atomic_write_bytes(json_path, (json.dumps(results, indent=1) + "\n").encode("utf-8"))
    report_path = out_dir / "report.md"
    atomic_write_bytes(report_path, render_report(results).encode("utf-8"))
    for path in (json_path, report_path):
        path.chmod(0o644)  # mkstemp made them private; these are reports to share
    written = [json_path, report_path]
    if plots:
        from hemiface.benchmarks.plots import write_plots

        written += write_plots(BenchResults.from_json(results), out_dir)
    return written
