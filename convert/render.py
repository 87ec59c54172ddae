"""The conversion summary as a rich table (CLI layer only)."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from hemiface.convert.summary import ConversionSummary
from hemiface.runtime.manifest import LoadCheck

SHORT_RUNTIME = {"ai-edge-litert": "litert", "tflite-runtime": "tfl-rt"}


def short_loads(loads_in: dict[str, str]) -> str:
    """E.g. "litert 2.3.0 ok, tfl-rt 2.14.0 NO"."""
    parts = []
    for runtime, result in loads_in.items():
        name, _, version = runtime.partition(" ")
        label = f"{SHORT_RUNTIME.get(name, name)} {version}".strip()
        label = escape(label)
        ok = LoadCheck.from_manifest(result).ok
        parts.append(f"{label} ok" if ok else f"[red]{label} NO[/]")
    return ", ".join(parts) or "-"


def summary_table(summary: ConversionSummary) -> Table:
    table = Table(title=Text(f"hemiface convert -> {summary.out}"))
    table.add_column("model")
    table.add_column("format")
    for column in ("MB", "×src", "agree", "max|Δp|", "acc", "ms", "needs"):
        table.add_column(column, justify="right")
    table.add_column("loads in")
    table.add_column("")
    for row in summary.rows:
        v = row.verification
        status = "[green]ok[/]" if row.passed else "[red]FAILED[/]"
        if row.reused:
            status += " (reused)"
        needs = row.min_runtime.replace("TFLite runtime ", "").split(" ")[0]
        table.add_row(
            Text(row.title),
            row.format,
            f"{row.size_mb:.2f}",
            f"{row.size_ratio:.2f}",
            f"{v.agreement:.1%}" if v else "-",
            f"{v.max_abs_dp:.4f}" if v else "-",
            f"{v.accuracy:.1%}" if v and v.accuracy is not None else "-",
            f"{v.latency_ms:.2f}" if v else "-",
            needs,
            short_loads(row.loads_in),
            status,
        )
    return table
