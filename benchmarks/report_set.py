"""report.md sections for the set as a whole: set latency (fused vs separate, sequential vs
threads, toolkit overhead), delegate partitions, and the live loop's variants and stages;
and the headline lines they give."""

from __future__ import annotations

from typing import Any

from hemiface.benchmarks.rows import SetRow
from hemiface.benchmarks.sections import (
    BenchResults,
    DelegationSection,
    PipelineSection,
    SetSection,
)
from hemiface.benchmarks.set_latency import REFERENCE

STAGES = ("read", "face", "face_wait", "models", "draw")


def _f(value: Any, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}{suffix}" if isinstance(value, float) else f"{value}{suffix}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return ["(none)", ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows] + [""]


def _key(row: SetRow) -> tuple[Any, ...]:
    return (row.format, row.fused, row.concurrency, row.threads)


def set_tables(section: SetSection) -> list[str]:
    out = ["## The set as a whole (one 224x224 input, every model)", ""]
    if section.status != "ok":
        return out + [f"Skipped: {section.reason or ''}", ""]
    out += [
        "Every configuration was opened in one process and timed round-robin "
        f"({section.rounds} rounds). 'toolkit' is `ModelSet.probabilities` (input "
        "tensors, invokes, dequantized outputs); 'bare' the same interpreters' `invoke()` "
        "alone; overhead = toolkit / bare - 1. Ratios are against "
        f"{section.reference} (toolkit, medians).",
        "",
    ]
    rows = sorted(section.rows, key=lambda r: (r.format, r.threads, _key(r)))
    return out + _table(
        [
            "format",
            "artifacts",
            "interpreters",
            "threads",
            "toolkit ms",
            "bare ms",
            "overhead",
            "x reference",
        ],
        [
            [
                r.format,
                "fused" if r.fused else "separate",
                f"{r.interpreters} {'at once' if r.concurrency == 'threads' else 'in turn'}",
                str(r.threads),
                _f(r.toolkit["median_ms"]),
                _f(r.bare["median_ms"]),
                _f(r.overhead_pct, 1, " %"),
                _f(r.vs_reference, 2, "x"),
            ]
            for r in rows
        ],
    )


def delegation_table(section: DelegationSection) -> list[str]:
    out = ["## Delegate partitions per artifact", ""]
    if section.status != "ok":
        return out + [f"Skipped: {section.reason or ''}", ""]
    out += [
        f"XNNPACK partitions as the interpreter here ({section.backend}) made them; "
        "'outside' names the ops left to the built-in kernels (each a hand-over between "
        "kernels). 'at convert' is the count the manifest recorded.",
        "",
    ]
    return out + _table(
        ["artifact", "format", "partitions", "outside", "at convert"],
        [
            [
                r.artifact,
                r.format,
                _f(r.partitions) if r.status == "ok" else "failed",
                ", ".join(r.undelegated_ops or []) or "none",
                _f(r.recorded_partitions),
            ]
            for r in section.rows
        ],
    )


def pipeline_tables(section: PipelineSection) -> list[str]:
    out = ["## Live pipeline (640x480 video, face detection + all models)", ""]
    if section.status != "ok":
        return out + [f"Skipped: {section.reason or ''}", ""]
    first = next((r for r in section.rows if r.status == "ok"), None)
    detector, models, backend = (
        (first.detector, first.models, first.backend) if first else ("haar", "?", "")
    )
    out += [
        f"Video: {section.video} ({section.video_content}); "
        f"{detector} face detection on every frame, "
        f"{models} models a frame, {backend}. "
        "Variants: 'before' runs each model's own artifact, one thing after another (the "
        "loop before fusion and concurrency); 'fused' the same with the fused artifact; "
        "'models' runs the interpreters at once; 'overlap' runs the next frame's face step "
        "beside this frame's models; 'both'; 'auto' measures at start and runs the "
        "fastest (as `hemiface run` does). Stage times are means per frame in ms; "
        "'face' is the face step's own time, 'wait' the part of it the models did not hide.",
        "",
    ]
    table = []
    for r in section.rows:
        stages = r.stage_ms or {}
        ok = r.status == "ok"
        table.append(
            [
                r.format,
                r.variant,
                _f(r.mode) + (f", {r.threads} thr" if ok else ""),
                _f(r.fps, 1) if ok else f"failed: {_f(r.error)[:80]}",
                _f(r.median_ms, 1),
                *[_f(stages.get(s), 2) for s in STAGES],
                _f(r.frames_with_face),
            ]
        )
    out += _table(
        ["format", "variant", "ran", "FPS", "ms/frame", *STAGES[:2], "wait", *STAGES[3:], "faces"],
        table,
    )
    auto = [r for r in section.rows if r.variant == "auto" and r.status == "ok"]
    for r in auto:
        measured = ", ".join(f"{k} {v:.1f}" for k, v in (r.mode_ms_per_frame or {}).items())
        out += [
            f"auto, {r.format}: chose {r.mode} ({r.mode_reason}); {measured}",
            "",
        ]
    return out


def set_headline(results: BenchResults) -> list[str]:
    """Ratios for the set as a whole, the live loop before/after, partitions."""
    lines: list[str] = []
    rows = {_key(r): r for r in results.set.rows}
    reference = rows.get(REFERENCE)
    if reference:
        ref_ms = reference.toolkit["median_ms"]
        for fmt in ("float32", "int8"):
            for fused in (True, False):
                options = [r for k, r in rows.items() if k[0] == fmt and k[1] == fused]
                if not options or (fmt, fused) == ("float32", False):
                    continue
                best = min(options, key=lambda r: r.toolkit["median_ms"])
                one = rows.get((fmt, fused, "sequential", 1))
                lines.append(
                    f"Set of {len(best.p)} models, {fmt} {'fused' if fused else 'separate'}: "
                    f"{_f(one.vs_reference if one else None)}x the separate float32 "
                    f"artifacts at 1 thread ({_f(one.toolkit['median_ms'] if one else None)} "
                    f"vs {ref_ms:.2f} ms); best {_f(best.vs_reference)}x "
                    f"({best.concurrency}, {best.threads} thread(s))"
                )
        overheads = [r.overhead_pct for r in rows.values() if r.overhead_pct is not None]
        if overheads:
            lines.append(
                f"Toolkit overhead over bare invokes: {min(overheads):.1f} to "
                f"{max(overheads):.1f} % across configurations (reference "
                f"{_f(reference.overhead_pct, 1)} %)"
            )
    pipeline = [r for r in results.pipeline.rows if r.status == "ok"]
    for fmt in dict.fromkeys(r.format for r in pipeline):
        by = {r.variant: r for r in pipeline if r.format == fmt}
        before, auto = by.get("before"), by.get("auto")
        if before and auto and before.fps and auto.fps:
            lines.append(
                f"Live loop {fmt}: {before.fps:.1f} FPS before, {auto.fps:.1f} FPS with "
                f"the fused artifact and {auto.mode} ({auto.fps / before.fps:.2f}x)"
            )
    delegation = results.delegation.rows
    split = [r for r in delegation if r.status == "ok" and r.partitions != 1]
    if delegation:
        lines.append(
            "Every artifact is one XNNPACK partition"
            if not split
            else "More than one partition: "
            + "; ".join(
                f"{r.artifact} {r.format} {r.partitions} "
                f"(outside: {', '.join(dict.fromkeys(r.undelegated_ops or []))})"
                for r in split
            )
        )
    return lines
