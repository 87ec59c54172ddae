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

from hemiface.core.errors import HemifaceError, one_line
from hemiface.core.quiet import quiet_fds
from hemiface.runtime.backends import resolve_backend
from hemiface.runtime.delegation import delegation_report
from hemiface.runtime.manifest import Manifest, read_verified_model


def delegation_section(
    manifest: Manifest, folder: Path, models: list[str], formats: list[str], backend: str | None
) -> dict[str, Any]:
    chosen = resolve_backend(backend)
    items: list[tuple[str, str, str, Any, int | None]] = []
    for entry in manifest.models:
        if entry.name in models and entry.format in formats:
            items.append((entry.name, entry.format, entry.file, entry, entry.delegate_partitions))
    for fused in manifest.fused:
        if fused.format in formats and set(fused.models) <= set(models):
            items.append((fused.name, fused.format, fused.file, fused, fused.delegate_partitions))
    for detector in manifest.detectors:
        items.append((detector.name, detector.format, detector.file, detector, None))
    rows = []
    for name, fmt, file, entry, recorded in items:
        row: dict[str, Any] = {"artifact": name, "format": fmt, "file": file}
        try:
            content = read_verified_model(folder, entry)
            with quiet_fds(2):
                interpreter = chosen.make_interpreter(content, 1)
            report = delegation_report(interpreter)
        except (HemifaceError, OSError, ValueError, RuntimeError) as exc:
            row.update(status="failed", error=one_line(exc))
            rows.append(row)
            continue
        row.update(
            status="ok",
            partitions=report.partitions if report else None,
            undelegated_ops=report.undelegated_ops if report else None,
            recorded_partitions=recorded,
        )
        rows.append(row)
    return {"status": "ok", "backend": chosen.label, "rows": rows}
