"""training_report.json and training_report.md from a TrainReport dict (TF-free)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from hemiface.train.names import REPORT_JSON, REPORT_MD


def _num(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def render_markdown(report: dict) -> str:
    lines = [
        "# Training report",
        "",
        f"- data: `{report['data']}` ({', '.join(f'{k} {v}' for k, v in report['images'].items())}"
        " images)",
        f"- build: {'quick' if report['quick'] else 'full'}; "
        f"wall time {report['wall_time_s']:.0f} s",
        f"- MobileNetV2 weights: requested `{report['weights_requested']}`, used: "
        f"{report['weights_used']}",
        "",
        "| model | file | status | test acc | ROC AUC | flip consistency | subtle / moderate / "
        "marked acc | train images | epochs (best) | train s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in report["models"]:
        metrics = m.get("metrics") or {}
        bands = metrics.get("accuracy_by_severity", {})
        band_text = " / ".join(_num(bands.get(b, {}).get("accuracy")) for b in
                               ("subtle", "moderate", "marked"))  # fmt: skip
        lines.append(
            f"| {m['title']} | `{m['file']}` | {m['status']} | {_num(metrics.get('accuracy'))} | "
            f"{_num(metrics.get('roc_auc'))} | {_num(metrics.get('flip_consistency'))} | "
            f"{band_text} | {m['train_images'] or '-'} | {m['epochs'] or '-'} "
            f"({m['best_epoch'] or '-'}) | {m['train_time_s']:.0f} |"
        )
    lines += [
        "",
        "Test accuracy at threshold 0.5 on the held-out test split; flip consistency is mean "
        "|p(mirror x) - (1 - p(x))| (0 is perfect). Severity bands: subtle < 0.4 <= moderate "
        "< 0.7 <= marked.",
        "",
        "Reload check (keras.models.load_model(..., safe_mode=True), max |p - p as evaluated| "
        "on the first test images): "
        + ", ".join(f"{k} {v:.1e}" for k, v in report.get("reload_max_abs_diff", {}).items()),
    ]
    notes = [f"- {m['title']}: {n}" for m in report["models"] for n in m.get("notes", [])]
    if notes:
        lines += ["", "Notes:", *notes]
    env = report.get("environment", {})
    if env:
        lines += ["", "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items())]
    return "\n".join(lines) + "\n"


def write_reports(report: dict, out: Path) -> None:
    (Path(out) / REPORT_JSON).write_text(json.dumps(report, indent=2, default=str) + "\n")
    (Path(out) / REPORT_MD).write_text(render_markdown(report))
