"""The headline of a benchmark run: the ratios report.md and the demo lead with, all
measured within the one run (medians)."""

from __future__ import annotations

from hemiface.benchmarks.report import fmt
from hemiface.benchmarks.sections import BenchResults, LatencyRow
from hemiface.benchmarks.set_latency import REFERENCE, set_key


def headline(results: BenchResults) -> list[str]:
    """The ratios the report leads with: measured in this run, medians."""
    lines = _profile_lines(results)
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
        for fmt_name in ("float32", "int8"):
            runtime = ok.get((name, f"tflite:{fmt_name}", t))
            if notebook and runtime:
                # Both measured: `ok` keeps only rows with a cold start.
                cold, notebook_cold = runtime.cold_start_s or 0.0, notebook.cold_start_s or 0.0
                lines.append(
                    f"{title}: cold start (new process to first prediction) "
                    f"{cold:.2f} s with the TFLite {fmt_name} runtime vs "
                    f"{notebook_cold:.2f} s with model.predict "
                    f"({notebook_cold / cold:.1f}x); peak RSS "
                    f"{runtime.peak_rss_mb:.0f} MB vs {notebook.peak_rss_mb:.0f} MB"
                )
    return lines


def _profile_lines(results: BenchResults) -> list[str]:
    """What the demo's short profile measured on, said first (the counts behind the ratios)."""
    settings, agreement = results.settings, results.agreement
    if settings.profile != "demo":
        return []
    frames = {r.frames for r in results.pipeline.rows if r.frames}
    images = (
        f"{agreement.n_images} labelled images ({agreement.n_positive} positive)"
        if agreement.status == "ok"
        else "no agreement images"
    )
    return [
        f"Demo profile: {settings.n} timed runs a row after {settings.warmup} warm-up, "
        f"{', '.join(map(str, settings.threads))} thread(s), every latency row in one process "
        f"(no cold start or peak memory), {images} for agreement, "
        f"{'/'.join(map(str, sorted(frames))) or 'no'} video frames a live-loop row; "
        "`hemiface bench` runs the full version"
    ]


def set_headline(results: BenchResults) -> list[str]:
    """Ratios for the set as a whole, the live loop before/after, partitions."""
    lines: list[str] = []
    rows = {set_key(r): r for r in results.set.rows}
    reference = rows.get(REFERENCE)
    if reference:
        ref_ms = reference.toolkit.median_ms
        for fmt_name in ("float32", "int8"):
            for fused in (True, False):
                options = [r for k, r in rows.items() if k[0] == fmt_name and k[1] == fused]
                if not options or (fmt_name, fused) == ("float32", False):
                    continue
                best = min(options, key=lambda r: r.toolkit.median_ms)
                one = rows.get((fmt_name, fused, "sequential", 1))
                lines.append(
                    f"Set of {len(best.p)} models, {fmt_name} {'fused' if fused else 'separate'}: "
                    f"{fmt(one.vs_reference if one else None)}x the separate float32 "
                    f"artifacts at 1 thread ({fmt(one.toolkit.median_ms if one else None)} "
                    f"vs {ref_ms:.2f} ms); best {fmt(best.vs_reference)}x "
                    f"({best.concurrency}, {best.threads} thread(s))"
                )
        overheads = [r.overhead_pct for r in rows.values() if r.overhead_pct is not None]
        if overheads:
            lines.append(
                f"Toolkit overhead over bare invokes: {min(overheads):.1f} to "
                f"{max(overheads):.1f} % across configurations (reference "
                f"{fmt(reference.overhead_pct, 1)} %)"
            )
    return lines + _live_loop_lines(results) + _partition_lines(results)


def _live_loop_lines(results: BenchResults) -> list[str]:
    lines = []
    pipeline = [r for r in results.pipeline.rows if r.status == "ok"]
    for fmt_name in dict.fromkeys(r.format for r in pipeline):
        by = {r.variant: r for r in pipeline if r.format == fmt_name}
        before, auto = by.get("before"), by.get("auto")
        if before and auto and before.fps and auto.fps:
            lines.append(
                f"Live loop {fmt_name}: {before.fps:.1f} FPS before, {auto.fps:.1f} FPS with "
                f"the fused artifact and {auto.mode} ({auto.fps / before.fps:.2f}x)"
            )
    return lines


def _partition_lines(results: BenchResults) -> list[str]:
    delegation = results.delegation.rows
    if not delegation:
        return []
    split = [r for r in delegation if r.status == "ok" and r.partitions != 1]
    if not split:
        return ["Every artifact is one XNNPACK partition"]
    return [
        "More than one partition: "
        + "; ".join(
            f"{r.artifact} {r.format} {r.partitions} "
            f"(outside: {', '.join(dict.fromkeys(r.undelegated_ops or []))})"
            for r in split
        )
    ]
