"""report.md from results.json: the ratios first, then one table per section. `table` and
`fmt` are the one table helper of the bench's Markdown (the README figures use them too)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hemiface.benchmarks.sections import (
    AgreementSection,
    BenchResults,
    DelegationSection,
    Int8IOSection,
    LatencySection,
    PipelineSection,
    SetSection,
)
from hemiface.benchmarks.set_latency import set_key

NOISE_NOTE = (
    "Absolute times vary from run to run on a shared machine; the ratios below were "
    "measured in the same run (medians) and are the figures to compare."
)
STAGES = ("read", "face", "face_wait", "models", "draw")


def fmt(value: Any, digits: int = 2, suffix: str = "") -> str:
    """A figure for a table: floats to `digits` places, None as a dash."""
    if value is None:
        return "–"
    return f"{value:.{digits}f}{suffix}" if isinstance(value, float) else f"{value}{suffix}"


def table(header: Sequence[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table and a blank line ("(none)" without rows)."""
    if not rows:
        return ["(none)", ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows] + [""]


def _mb(size: int | None) -> str:
    if size is None:
        return "–"
    return f"{size / 1e6:.2f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


def _ms(value: float | None) -> str:
    """Milliseconds with about three significant digits."""
    if value is None:
        return "–"
    digits = 0 if value >= 100 else 1 if value >= 10 else 2 if value >= 1 else 3
    return f"{value:.{digits}f}"


def _short(text: str | None, limit: int = 90) -> str:
    text = (text or "").replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _skipped(out: list[str], section: Any) -> list[str] | None:
    """The heading and a 'Skipped' line when the section did not run, else None."""
    return None if section.status == "ok" else out + [f"Skipped: {section.reason or ''}", ""]


def render_report(data: dict[str, Any]) -> str:
    """report.md from results.json's content (as written: NaN already null)."""
    results = BenchResults.from_json(data)
    machine, settings, titles = results.machine, results.settings, results.titles()
    out = [
        "# hemiface benchmark",
        "",
        f"Command: `{results.command}`  ",
        f"Run: {results.created_utc}, {results.duration_s:.0f} s.  ",
        f"Machine: {machine.get('cpu_model')}, {machine.get('logical_cpus')} logical CPUs "
        f"({machine.get('physical_cores')} cores), CPU flags "
        f"{', '.join(machine.get('cpu_flags') or []) or 'unknown'}, load average at start "
        f"{fmt((machine.get('load_average') or [None])[0])}; Python {machine.get('python')}, "
        f"TensorFlow {machine.get('tensorflow')}, Keras {machine.get('keras')}, "
        f"interpreters {machine.get('interpreter_backends')}, numpy {machine.get('numpy')}, "
        f"OpenCV {machine.get('opencv')}.  ",
        f"Settings: threads {settings.threads}, warm-up {settings.warmup}, "
        f"N >= {settings.n} and >= {settings.min_time_s} s per row"
        f"{' (quick run)' if settings.quick else ''}; images for agreement: "
        f"{settings.n_images}.",
        "",
        "## Headline: ratios within this run",
        "",
        NOISE_NOTE,
        "",
    ]
    out += [f"- {line}" for line in results.headline] or ["- (no ratios: see failures)"]
    out.append("")
    out += _latency_tables(results.latency, titles)
    out += set_tables(results.set)
    out += delegation_table(results.delegation)
    out += pipeline_tables(results.pipeline)
    out += _agreement_tables(results.agreement, titles)
    if results.detectors is not None:
        from hemiface.benchmarks.detector_report import detectors_tables

        out += detectors_tables(results.detectors, machine)
    if results.int8_io is not None:
        out += int8_io_table(results.int8_io)
    out += _failures(results)
    plots = (
        ("latency", "latency.png"),
        ("agreement", "agreement_matrix.png"),
        ("|Δp|", "abs_dp.png"),
    )
    out += ["## Plots", ""] + [line for alt, png in plots for line in (f"![{alt}]({png})", "")]
    return "\n".join(out)


_LATENCY = (
    "model;engine;threads;median;p90;p99;mean;std;N;init s;1st inference s;file;MMAC;GMAC/s;"
    "% of matmul"
)
_MEMORY = (
    "model;engine;threads;peak RSS MB;RSS ready MB;cold start s;import s;init s;1st inference s"
)


def _latency_tables(section: LatencySection, titles: dict[str, str]) -> list[str]:
    out = ["## Latency (single image, ms)", ""]
    if (skipped := _skipped(out, section)) is not None:
        return skipped
    rows = [
        [r.title, r.engine_label, str(r.threads),
         _ms(r.median_ms) if r.status == "ok" else f"**failed**: {_short(r.error)}",
         _ms(r.p90_ms), _ms(r.p99_ms), _ms(r.mean_ms), _ms(r.std_ms), fmt(r.n),
         fmt(r.init_s, 3), fmt(r.first_inference_s, 3), _mb(r.file_size_bytes),
         fmt(r.macs / 1e6 if r.macs else None, 1), fmt(r.gmacs_per_s, 1),
         fmt(r.fraction_of_machine * 100 if r.fraction_of_machine else None, 0)]
        for r in section.rows
    ]  # fmt: skip
    out += table(_LATENCY.split(";"), rows)
    out += [line for reason in section.skipped or [] for line in (f"Skipped: {reason}.", "")]
    if section.machine_reference:
        yardstick = ", ".join(
            f"{m.threads} thread(s) {fmt(m.gmacs_per_s, 1)} GMAC/s"
            for m in section.machine_reference
        )
        out += [
            f"Machine yardstick (numpy float32 matrix multiply, best run): {yardstick}. "
            "'% of matmul' is a row's achieved GMAC/s against it (int8 rows can exceed "
            "it: integer arithmetic is not float32).",
            "",
        ]
    out += ["### Speed-up over Keras `model.predict` (same model, same threads)", ""]
    out += table(
        ["model", "threads", "engine", "speed-up"],
        [[titles.get(s.model, s.model), str(s.threads), s.engine_label, f"{s.speedup:.1f}x"]
         for s in section.speedup_over_predict or []],
    )  # fmt: skip
    out += ["### Speed-up of each TFLite format over float32", ""]
    out += table(
        ["model", "threads", "format", "speed-up"],
        [[titles.get(s.model, s.model), str(s.threads), s.format, f"{s.speedup:.2f}x"]
         for s in section.speedup_over_float32 or []],
    )  # fmt: skip
    out += ["## Memory and cold start", ""]
    if section.shared_process:
        return out + [
            "Not measured: every row of this run was timed in one shared process (the demo's "
            "profile), so no row has its own memory or cold start.",
            "",
        ]
    out += [
        "Each row ran in its own process. Peak RSS is the whole process (Python, imports, "
        "model); cold start is process spawn to the first prediction on a real image file.",
        "",
    ]
    rows = [
        [r.title, r.engine_label, str(r.threads), fmt(r.peak_rss_mb, 0), fmt(r.rss_ready_mb, 0),
         fmt(r.cold_start_s, 2), fmt(r.import_s, 2), fmt(r.init_s, 3), fmt(r.first_inference_s, 3)]
        for r in section.rows
        if r.status == "ok"
    ]  # fmt: skip
    return out + table(_MEMORY.split(";"), rows)


def set_tables(section: SetSection) -> list[str]:
    out = ["## The set as a whole (one 224x224 input, every model)", ""]
    if (skipped := _skipped(out, section)) is not None:
        return skipped
    out += [
        "Every configuration was opened in one process and timed round-robin "
        f"({section.rounds} rounds). 'toolkit' is `ModelSet.probabilities` (input "
        "tensors, invokes, dequantized outputs); 'bare' the same interpreters' `invoke()` "
        "alone; overhead = toolkit / bare - 1. Ratios are against "
        f"{section.reference} (toolkit, medians).",
        "",
    ]
    rows = sorted(section.rows, key=lambda r: (r.format, r.threads, set_key(r)))
    header = "format;artifacts;interpreters;threads;toolkit ms;bare ms;overhead;x reference"
    return out + table(
        header.split(";"),
        [[r.format, "fused" if r.fused else "separate",
          f"{r.interpreters} {'at once' if r.concurrency == 'threads' else 'in turn'}",
          str(r.threads), fmt(r.toolkit.median_ms), fmt(r.bare.median_ms),
          fmt(r.overhead_pct, 1, " %"), fmt(r.vs_reference, 2, "x")]
         for r in rows],
    )  # fmt: skip


def delegation_table(section: DelegationSection) -> list[str]:
    out = ["## Delegate partitions per artifact", ""]
    if (skipped := _skipped(out, section)) is not None:
        return skipped
    out += [
        f"XNNPACK partitions as the interpreter here ({section.backend}) made them; "
        "'outside' names the ops left to the built-in kernels (each a hand-over between "
        "kernels). 'at convert' is the count the manifest recorded.",
        "",
    ]
    return out + table(
        ["artifact", "format", "partitions", "outside", "at convert"],
        [[r.artifact, r.format, fmt(r.partitions) if r.status == "ok" else "failed",
          ", ".join(r.undelegated_ops or []) or "none", fmt(r.recorded_partitions)]
         for r in section.rows],
    )  # fmt: skip


def pipeline_tables(section: PipelineSection) -> list[str]:
    out = ["## Live pipeline (640x480 video, face detection + all models)", ""]
    if (skipped := _skipped(out, section)) is not None:
        return skipped
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
        "beside this frame's models; 'both'; 'lanes' one frame a core side by side; 'auto' "
        "chooses as `hemiface run` does. Stage times are means per frame in ms; "
        "'face' is the face step's own time, 'wait' the part of it the models did not hide. "
        "'ceiling' is the frame rate the machine's cores would reach if every core were "
        "busy with this run's own stage times (read, face, models, draw), and '%' the share "
        "of it the loop reached.",
        "",
    ]
    rows = []
    for r in section.rows:
        stages, ok = r.stage_ms or {}, r.status == "ok"
        rows.append(
            [r.format, r.variant, fmt(r.mode) + (f", {r.threads} thr" if ok else ""),
             fmt(r.fps, 1) if ok else f"failed: {fmt(r.error)[:80]}", fmt(r.median_ms, 1),
             *[fmt(stages.get(s), 2) for s in STAGES], fmt(r.frames_with_face),
             fmt(r.ceiling_fps, 1), _share(r.fps, r.ceiling_fps)]
        )  # fmt: skip
    header = ["format", "variant", "ran", "FPS", "ms/frame", *STAGES[:2], "wait", *STAGES[3:]]
    out += table([*header, "faces", "ceiling", "%"], rows)
    for r in section.rows:
        if r.variant == "auto" and r.status == "ok":
            measured = ", ".join(f"{k} {v:.1f}" for k, v in (r.mode_ms_per_frame or {}).items())
            out += [f"auto, {r.format}: chose {r.mode} ({r.mode_reason}); {measured}", ""]
    return out


def _share(fps: float | None, ceiling: float | None) -> str:
    return f"{100.0 * fps / ceiling:.0f} %" if fps and ceiling else "-"


def _agreement_tables(section: AgreementSection, titles: dict[str, str]) -> list[str]:
    out = ["## Agreement", ""]
    if (skipped := _skipped(out, section)) is not None:
        return skipped
    out += [
        f"{section.n_images} labelled images ({section.n_positive} positive) from "
        f"`{section.data_dir}`; threshold {section.threshold}.",
        "",
        "### Each TFLite artifact against its Keras source",
        "",
    ]
    header = "model;format;label agreement;flips;mean \\|Δp\\|;p99 \\|Δp\\|;max \\|Δp\\|"
    out += table(
        header.split(";"),
        [[titles.get(v.model, v.model), v.format, f"{v.label_agreement:.1%}", str(v.flips),
          f"{v.mean_abs_dp:.5f}", f"{v.p99_abs_dp:.5f}", f"{v.max_abs_dp:.5f}"]
         for v in section.vs_source or []],
    )  # fmt: skip
    out += [
        "### Accuracy, ROC AUC, calibration and flip consistency against the labels",
        "",
        "ECE: expected calibration error (10 bins). Flip consistency: mean "
        "\\|p(flip x) − (1 − p(x))\\|, 0 for a model whose answer mirrors with the image.",
        "",
    ]
    out += table(
        ["model", "variant", "accuracy", "ROC AUC", "ECE", "flip consistency", "mean p"],
        [[titles.get(q.model, q.model), q.variant, f"{q.accuracy:.1%}", fmt(q.roc_auc, 3),
          f"{q.ece:.3f}", f"{q.flip_consistency:.3f}", fmt(q.mean_p, 3)]
         for q in section.quality or []],
    )  # fmt: skip
    out += ["### Model against model: label agreement / Cohen's kappa", ""]
    for block in section.between_models or []:
        names = block.ensemble.models
        cell = {}
        for pair in block.pairs:
            text = f"{pair.label_agreement:.1%} / {pair.kappa:.2f}"
            cell[pair.a, pair.b] = cell[pair.b, pair.a] = text
        out += [f"**{block.variant}**", ""]
        out += table(
            [""] + [titles.get(n, n) for n in names],
            [[titles.get(a, a)] + [("—" if a == b else cell.get((a, b), "–")) for b in names]
             for a in names],
        )  # fmt: skip
        ens = block.ensemble
        if ens.mean_p_accuracy is not None and ens.majority_accuracy is not None:
            out += [
                f"Ensemble of {len(names)}: mean-probability accuracy "
                f"{ens.mean_p_accuracy:.1%} (ROC AUC {fmt(ens.mean_p_roc_auc, 3)}), "
                f"majority-vote accuracy {ens.majority_accuracy:.1%}.",
                "",
            ]
    return out


def int8_io_table(section: Int8IOSection) -> list[str]:
    out = ["## Full int8: int8 against uint8 input/output", ""]
    if (skipped := _skipped(out, section)) is not None:
        return skipped
    out += [
        f"1 interpreter thread; {section.rounds} rounds of {section.runs_per_round} runs, "
        "round-robin; medians.",
        "",
    ]
    uint8 = {r.model: r.whole_ms for r in section.rows if r.io == "uint8"}
    header = "model;I/O;bare invoke ms;whole prediction ms;int8/uint8 (whole);partitions;outside"
    return out + table(
        [*header.split(";"), "agreement with Keras", "max \\|Δp\\|"],
        [[r.title, r.io, f"{r.bare_ms:.2f}", f"{r.whole_ms:.2f}",
          f"{r.whole_ms / uint8[r.model]:.2f}x" if r.io == "int8" and r.model in uint8 else "",
          fmt(r.partitions), ", ".join(r.undelegated_ops or []) or "none",
          f"{r.agreement:.1%} of {r.n_images}" if r.agreement is not None else "–",
          fmt(r.max_abs_dp, 4)]
         for r in section.rows],
    )  # fmt: skip


def _failures(results: BenchResults) -> list[str]:
    items = [
        f"latency {r.title} {r.engine_label} t{r.threads}: {r.error}"
        for r in results.latency.rows
        if r.status == "failed"
    ]
    items += [f"agreement {f.item}: {f.error}" for f in results.agreement.failures or []]
    items += [
        f"pipeline {r.format}: {r.error}" for r in results.pipeline.rows if r.status == "failed"
    ]
    for name, section in (("detectors", results.detectors), ("int8-io", results.int8_io)):
        if section is not None and section.status == "failed":
            items.append(f"{name}: {section.reason}")
    return ["## Failures", ""] + [f"- {item}" for item in items] + [""] if items else []
