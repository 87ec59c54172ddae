"""report.md from results.json: the ratios first, then the tables."""

from __future__ import annotations

from typing import Any

from hemiface.benchmarks.report_set import delegation_table, pipeline_tables, set_tables
from hemiface.benchmarks.sections import AgreementSection, BenchResults, LatencySection

NOISE_NOTE = (
    "Absolute times vary from run to run on a shared machine; the ratios below were "
    "measured in the same run (medians) and are the figures to compare."
)


def _fmt(value: Any, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}{suffix}"
    return f"{value}{suffix}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return ["(none)", ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


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


def render_report(data: dict[str, Any]) -> str:
    """report.md from results.json's content (as written: NaN already null)."""
    results = BenchResults.from_json(data)
    machine = results.machine
    settings = results.settings
    titles = results.titles()
    out = [
        "# hemiface benchmark",
        "",
        f"Command: `{results.command}`  ",
        f"Run: {results.created_utc}, {results.duration_s:.0f} s.  ",
        f"Machine: {machine.get('cpu_model')}, {machine.get('logical_cpus')} logical CPUs "
        f"({machine.get('physical_cores')} cores), CPU flags "
        f"{', '.join(machine.get('cpu_flags') or []) or 'unknown'}, load average at start "
        f"{_fmt((machine.get('load_average') or [None])[0])}; Python {machine.get('python')}, "
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
    out += _failures(results)
    out += [
        "## Plots",
        "",
        "![latency](latency.png)",
        "",
        "![agreement](agreement_matrix.png)",
        "",
        "![|Δp|](abs_dp.png)",
        "",
    ]
    return "\n".join(out)


def _latency_tables(section: LatencySection, titles: dict[str, str]) -> list[str]:
    out = ["## Latency (single image, ms)", ""]
    if section.status != "ok":
        return out + [f"Skipped: {section.reason or ''}", ""]
    rows = section.rows
    table = []
    for r in rows:
        ok = r.status == "ok"
        table.append(
            [
                r.title,
                r.engine_label,
                str(r.threads),
                _ms(r.median_ms) if ok else f"**failed**: {_short(r.error)}",
                _ms(r.p90_ms),
                _ms(r.p99_ms),
                _ms(r.mean_ms),
                _ms(r.std_ms),
                _fmt(r.n),
                _fmt(r.init_s, 3),
                _fmt(r.first_inference_s, 3),
                _mb(r.file_size_bytes),
                _fmt(r.macs / 1e6 if r.macs else None, 1),
                _fmt(r.gmacs_per_s, 1),
                _fmt(r.fraction_of_machine * 100 if r.fraction_of_machine else None, 0),
            ]
        )
    out += _table(
        [
            "model",
            "engine",
            "threads",
            "median",
            "p90",
            "p99",
            "mean",
            "std",
            "N",
            "init s",
            "1st inference s",
            "file",
            "MMAC",
            "GMAC/s",
            "% of matmul",
        ],
        table,
    )
    for reason in section.skipped or []:
        out += [f"Skipped: {reason}.", ""]
    machine = section.machine_reference or []
    if machine:
        out.append(
            "Machine yardstick (numpy float32 matrix multiply, best run): "
            + ", ".join(f"{m.threads} thread(s) {_fmt(m.gmacs_per_s, 1)} GMAC/s" for m in machine)
            + ". '% of matmul' is a row's achieved GMAC/s against it (int8 rows can exceed "
            "it: integer arithmetic is not float32).",
        )
        out.append("")
    out += ["### Speed-up over Keras `model.predict` (same model, same threads)", ""]
    out += _table(
        ["model", "threads", "engine", "speed-up"],
        [
            [titles.get(s.model, s.model), str(s.threads), s.engine_label, f"{s.speedup:.1f}x"]
            for s in section.speedup_over_predict or []
        ],
    )
    out += ["### Speed-up of each TFLite format over float32", ""]
    out += _table(
        ["model", "threads", "format", "speed-up"],
        [
            [titles.get(s.model, s.model), str(s.threads), s.format, f"{s.speedup:.2f}x"]
            for s in section.speedup_over_float32 or []
        ],
    )
    out += [
        "## Memory and cold start",
        "",
        "Each row ran in its own process. Peak RSS is the whole process (Python, imports, "
        "model); cold start is process spawn to the first prediction on a real image file.",
        "",
    ]
    out += _table(
        [
            "model",
            "engine",
            "threads",
            "peak RSS MB",
            "RSS ready MB",
            "cold start s",
            "import s",
            "init s",
            "1st inference s",
        ],
        [
            [
                r.title,
                r.engine_label,
                str(r.threads),
                _fmt(r.peak_rss_mb, 0),
                _fmt(r.rss_ready_mb, 0),
                _fmt(r.cold_start_s, 2),
                _fmt(r.import_s, 2),
                _fmt(r.init_s, 3),
                _fmt(r.first_inference_s, 3),
            ]
            for r in rows
            if r.status == "ok"
        ],
    )
    return out


def _agreement_tables(section: AgreementSection, titles: dict[str, str]) -> list[str]:
    out = ["## Agreement", ""]
    if section.status != "ok":
        return out + [f"Skipped: {section.reason or ''}", ""]
    out += [
        f"{section.n_images} labelled images ({section.n_positive} positive) from "
        f"`{section.data_dir}`; threshold {section.threshold}.",
        "",
        "### Each TFLite artifact against its Keras source",
        "",
    ]
    out += _table(
        [
            "model",
            "format",
            "label agreement",
            "flips",
            "mean \\|Δp\\|",
            "p99 \\|Δp\\|",
            "max \\|Δp\\|",
        ],
        [
            [
                titles.get(v.model, v.model),
                v.format,
                f"{v.label_agreement:.1%}",
                str(v.flips),
                f"{v.mean_abs_dp:.5f}",
                f"{v.p99_abs_dp:.5f}",
                f"{v.max_abs_dp:.5f}",
            ]
            for v in section.vs_source or []
        ],
    )
    out += [
        "### Accuracy, ROC AUC, calibration and flip consistency against the labels",
        "",
        "ECE: expected calibration error (10 bins). Flip consistency: mean "
        "\\|p(flip x) − (1 − p(x))\\|, 0 for a model whose answer mirrors with the image.",
        "",
    ]
    out += _table(
        ["model", "variant", "accuracy", "ROC AUC", "ECE", "flip consistency", "mean p"],
        [
            [
                titles.get(q.model, q.model),
                q.variant,
                f"{q.accuracy:.1%}",
                _fmt(q.roc_auc, 3),
                f"{q.ece:.3f}",
                f"{q.flip_consistency:.3f}",
                _fmt(q.mean_p, 3),
            ]
            for q in section.quality or []
        ],
    )
    out += ["### Model against model: label agreement / Cohen's kappa", ""]
    for block in section.between_models or []:
        names = block["ensemble"]["models"]
        cell = {}
        for pair in block["pairs"]:
            text = f"{pair['label_agreement']:.1%} / {pair['kappa']:.2f}"
            cell[pair["a"], pair["b"]] = cell[pair["b"], pair["a"]] = text
        out.append(f"**{block['variant']}**")
        out.append("")
        out += _table(
            [""] + [titles.get(n, n) for n in names],
            [
                [titles.get(a, a)] + [("—" if a == b else cell.get((a, b), "–")) for b in names]
                for a in names
            ],
        )
        ens = block["ensemble"]
        if "mean_p_accuracy" in ens:
            out.append(
                f"Ensemble of {len(names)}: mean-probability accuracy "
                f"{ens['mean_p_accuracy']:.1%} (ROC AUC {_fmt(ens.get('mean_p_roc_auc'), 3)}), "
                f"majority-vote accuracy {ens['majority_accuracy']:.1%}."
            )
            out.append("")
    return out


def _failures(results: BenchResults) -> list[str]:
    items = [
        f"latency {r.title} {r.engine_label} t{r.threads}: {r.error}"
        for r in results.latency.rows
        if r.status == "failed"
    ]
    items += [f"agreement {f['item']}: {f['error']}" for f in results.agreement.failures or []]
    items += [
        f"pipeline {r.format}: {r.error}" for r in results.pipeline.rows if r.status == "failed"
    ]
    if not items:
        return []
    return ["## Failures", ""] + [f"- {item}" for item in items] + [""]
