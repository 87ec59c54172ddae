"""The delegation section: how XNNPACK partitions each artifact of the set, on this machine.

Each artifact (every model and format, every fused artifact, the face detector) is loaded
once in this process and its partitions counted (`hemiface.runtime.delegation`): one
partition and no op outside is the fast case; otherwise the row names the ops that stay
outside. The counts convert recorded in the manifest are shown beside, when they differ
the interpreter here differs from convert's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hemiface.benchmarks.sections import DelegationRow, DelegationSection
from hemiface.core.errors import HemifaceError, one_line
from hemiface.core.quiet import quiet_fds
from hemiface.runtime.backends import resolve_backend
from hemiface.runtime.delegation import delegation_report
from hemiface.runtime.manifest import Manifest, read_verified_model


def delegation_section(
    manifest: Manifest, folder: Path, models: list[str], formats: list[str], backend: str | None
) -> DelegationSection:
    chosen = resolve_backend(backend)
    items: list[tuple[str, Any, int | None]] = []
    for entry in manifest.models:
        if entry.name in models and entry.format in formats:
            items.append((entry.name, entry, entry.delegate_partitions))
    for fused in manifest.fused:
        if fused.format in formats and set(fused.models) <= set(models):
            items.append((fused.name, fused, fused.delegate_partitions))
    for detector in manifest.detectors:
        items.append((detector.name, detector, None))
    rows = []
    for name, entry, recorded in items:
        row = DelegationRow(name, entry.format, entry.file, "ok", recorded_partitions=recorded)
        try:
            content = read_verified_model(folder, entry)
            with quiet_fds(2):
                interpreter = chosen.make_interpreter(content, 1)
            report = delegation_report(interpreter)
        except (HemifaceError, OSError, ValueError, RuntimeError) as exc:
            row.status, row.error = "failed", one_line(exc)
        else:
            row.partitions = report.partitions if report else None
            row.undelegated_ops = report.undelegated_ops if report else None
        rows.append(row)
    return DelegationSection("ok", backend=chosen.label, rows=rows)
