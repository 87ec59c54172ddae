"""report.md sections for the set as a whole: set latency (fused vs separate, sequential vs
threads, toolkit overhead), delegate partitions, and the live loop's variants and stages;
and the headline lines they give."""

from __future__ import annotations

from typing import Any

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


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["format"], row["fused"], row["concurrency"], row["threads"])


def set_tables(section: dict[str, Any]) -> list[str]:
    out = ["## The set as a whole (one 224x224 input, every model)", ""]
    if section.get("status") != "ok":
        return out + [f"Skipped: {section.get('reason', '')}", ""]
    out += [
        "Every configuration was opened in one process and timed round-robin "
        f"({section.get('rounds')} rounds). 'toolkit' is `ModelSet.probabilities` (input "
        "tensors, invokes, dequantized outputs); 'bare' the same interpreters' `invoke()` "
        "alone; overhead = toolkit / bare - 1. Ratios are against "
        f"{section.get('reference')} (toolkit, medians).",
        "",
    ]
    rows = sorted(section["rows"], key=lambda r: (r["format"], r["threads"], _key(r)))
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
                r["format"],
                "fused" if r["fused"] else "separate",
                f"{r.get('interpreters', '?')} {'at once' if r['concurrency'] == 'threads' else 'in turn'}",  # noqa: E501
                str(r["threads"]),
                _f(r["toolkit"]["median_ms"]),
                _f(r["bare"]["median_ms"]),
                _f(r.get("overhead_pct"), 1, " %"),
                _f(r.get("vs_reference"), 2, "x"),
            ]
            for r in rows
        ],
    )


def delegation_table(section: dict[str, Any]) -> list[str]:
    out = ["## Delegate partitions per artifact", ""]
    if section.get("status") != "ok":
        return out + [f"Skipped: {section.get('reason', '')}", ""]
    out += [
        f"XNNPACK partitions as the interpreter here ({section.get('backend')}) made them; "
        "'outside' names the ops left to the built-in kernels (each a hand-over between "
        "kernels). 'at convert' is the count the manifest recorded.",
        "",
    ]
    return out + _table(
        ["artifact", "format", "partitions", "outside", "at convert"],
        [
            [
                r["artifact"],
                r["format"],
                _f(r.get("partitions")) if r["status"] == "ok" else "failed",
                ", ".join(r.get("undelegated_ops") or []) or "none",
                _f(r.get("recorded_partitions")),
            ]
            for r in section["rows"]
        ],
    )


def pipeline_tables(section: dict[str, Any]) -> list[str]:
    out = ["## Live pipeline (640x480 video, face detection + all models)", ""]
    if section.get("status") != "ok":
        return out + [f"Skipped: {section.get('reason', '')}", ""]
    first = next((r for r in section["rows"] if r["status"] == "ok"), {})
    out += [
        f"Video: {section.get('video')} ({section.get('video_content')}); "
        f"{first.get('detector', 'haar')} face detection on every frame, "
        f"{first.get('models', '?')} models a frame, {first.get('backend', '')}. "
        "Variants: 'before' runs each model's own artifact, one thing after another (the "
        "loop before fusion and concurrency); 'fused' the same with the fused artifact; "
        "'models' runs the interpreters at once; 'overlap' runs the next frame's face step "
        "beside this frame's models; 'both'; 'auto' measures at start and runs the "
        "fastest (as `hemiface run` does). Stage times are means per frame in ms; "
        "'face' is the face step's own time, 'wait' the part of it the models did not hide.",
        "",
    ]
    table = []
    for r in section["rows"]:
        stages = r.get("stage_ms") or {}
        ok = r["status"] == "ok"
        table.append(
            [
                r["format"],
                r.get("variant", "–"),
                _f(r.get("mode")) + (f", {r.get('threads')} thr" if ok else ""),
                _f(r.get("fps"), 1) if ok else f"failed: {_f(r.get('error'))[:80]}",
                _f(r.get("median_ms"), 1),
                *[_f(stages.get(s), 2) for s in STAGES],
                _f(r.get("frames_with_face")),
            ]
        )
    out += _table(
        ["format", "variant", "ran", "FPS", "ms/frame", *STAGES[:2], "wait", *STAGES[3:], "faces"],
        table,
    )
    auto = [r for r in section["rows"] if r.get("variant") == "auto" and r["status"] == "ok"]
    for r in auto:
        measured = ", ".join(f"{k} {v:.1f}" for k, v in (r.get("mode_ms_per_frame") or {}).items())
        out += [
            f"auto, {r['format']}: chose {r.get('mode')} ({r.get('mode_reason')}); {measured}",
            "",
        ]
    return out


def set_headline(results: dict[str, Any]) -> list[str]:
    """Ratios for the set as a whole, the live loop before/after, partitions."""
    lines: list[str] = []
    section = results.get("set", {})
    rows = {_key(r): r for r in section.get("rows", [])}
    reference = rows.get(REFERENCE)
    if reference:
        ref_ms = reference["toolkit"]["median_ms"]
        for fmt in ("float32", "int8"):
            for fused in (True, False):
                options = [r for k, r in rows.items() if k[0] == fmt and k[1] == fused]
                if not options or (fmt, fused) == ("float32", False):
                    continue
                best = min(options, key=lambda r: r["toolkit"]["median_ms"])
                one = rows.get((fmt, fused, "sequential", 1))
                lines.append(
                    f"Set of {len(best['p'])} models, {fmt} {'fused' if fused else 'separate'}: "
                    f"{_f(one['vs_reference'] if one else None)}x the separate float32 "
                    f"artifacts at 1 thread ({_f(one['toolkit']['median_ms'] if one else None)} "
                    f"vs {ref_ms:.2f} ms); best {best['vs_reference']:.2f}x "
                    f"({best['concurrency']}, {best['threads']} thread(s))"
                )
        overheads = [r["overhead_pct"] for r in rows.values() if r.get("overhead_pct") is not None]
        if overheads:
            lines.append(
                f"Toolkit overhead over bare invokes: {min(overheads):.1f} to "
                f"{max(overheads):.1f} % across configurations (reference "
                f"{_f(reference.get('overhead_pct'), 1)} %)"
            )
    pipeline = [r for r in results.get("pipeline", {}).get("rows", []) if r["status"] == "ok"]
    for fmt in dict.fromkeys(r["format"] for r in pipeline):
        by = {r.get("variant"): r for r in pipeline if r["format"] == fmt}
        before, auto = by.get("before"), by.get("auto")
        if before and auto:
            lines.append(
                f"Live loop {fmt}: {before['fps']:.1f} FPS before, {auto['fps']:.1f} FPS with "
                f"the fused artifact and {auto.get('mode')} ({auto['fps'] / before['fps']:.2f}x)"
            )
    split = [
        r
        for r in results.get("delegation", {}).get("rows", [])
        if r.get("status") == "ok" and r.get("partitions") != 1
    ]
    if results.get("delegation", {}).get("rows"):
        lines.append(
            "Every artifact is one XNNPACK partition"
            if not split
            else "More than one partition: "
            + "; ".join(
                f"{r['artifact']} {r['format']} {r['partitions']} "
                f"(outside: {', '.join(dict.fromkeys(r.get('undelegated_ops') or []))})"
                for r in split
            )
        )
    return lines
