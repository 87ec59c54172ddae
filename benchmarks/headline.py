"""The headline of a benchmark run: the ratios report.md and the demo lead with, all
measured within the one run (medians)."""

from __future__ import annotations

from hemiface.benchmarks.report_set import set_headline
from hemiface.benchmarks.rows import LatencyRow
from hemiface.benchmarks.sections import BenchResults


def headline(results: BenchResults) -> list[str]:
    """The ratios the report leads with: measured in this run, medians."""
    lines: list[str] = []
    latency = results.latency
    titles = results.titles()
    for t in results.settings.threads:
        threads = f"{t} thread{'s' if t > 1 else ''}"
        for name, title in titles.items():
            parts = [
                f"{item.engine_label} {item.speedup:.1f}x"
                for item in latency.speedup_over_predict or []
                if item.model == name and item.threads == t
            ]
            fmt_parts = [
                f"{item.format} {item.speedup:.2f}x"
                for item in latency.speedup_over_float32 or []
                if item.model == name and item.threads == t
            ]
            if parts:
                lines.append(
                    f"{title}, {threads}: speed-up over model.predict: " + ", ".join(parts)
                )
            if fmt_parts:
                lines.append(
                    f"{title}, {threads}: speed-up over TFLite float32: " + ", ".join(fmt_parts)
                )
    lines += _startup_lines(latency.rows, titles)
    lines += set_headline(results)
    for item in results.agreement.vs_source or []:
        lines.append(
            f"{titles.get(item.model, item.model)} {item.format} vs Keras: "
            f"{item.label_agreement:.1%} label agreement, {item.flips} flips, "
            f"max |Δp| {item.max_abs_dp:.4f}"
        )
    return lines


def _startup_lines(rows: list[LatencyRow], titles: dict[str, str]) -> list[str]:
    """Cold start and peak memory of the runtime's float32 path against model.predict."""
    lines = []
    ok = {
        (r.model, r.engine_label, r.threads): r for r in rows if r.status == "ok" and r.cold_start_s
    }
    for name, title in titles.items():
        threads = sorted({t for (m, _, t) in ok if m == name})
        if not threads:
            continue
        t = threads[-1]
        notebook = ok.get((name, "keras_predict", t))
        for fmt in ("float32", "int8"):
            runtime = ok.get((name, f"tflite:{fmt}", t))
            if notebook and runtime:
                # Both measured: `ok` keeps only rows with a cold start.
                cold, notebook_cold = runtime.cold_start_s or 0.0, notebook.cold_start_s or 0.0
                lines.append(
                    f"{title}: cold start (new process to first prediction) "
                    f"{cold:.2f} s with the TFLite {fmt} runtime vs "
                    f"{notebook_cold:.2f} s with model.predict "
                    f"({notebook_cold / cold:.1f}x); peak RSS "
                    f"{runtime.peak_rss_mb:.0f} MB vs {notebook.peak_rss_mb:.0f} MB"
                )
    return lines
