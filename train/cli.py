"""`hemiface train DATA --out MODELS`: the three reference models (needs TensorFlow)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hemiface.runtime.errors import require_tensorflow


def train(
    data: Path = typer.Argument(..., help="Image folder DATA/{train,val,test}/{Left,Right}/."),
    out: Path = typer.Option(Path("models"), "--out", "-o", help="Folder for the models."),
    quick: bool = typer.Option(False, "--quick", help="Small, fast build (fewer epochs)."),
    weights: str = typer.Option(
        "imagenet",
        "--weights",
        help="MobileNetV2 backbone: imagenet (falls back to random init when Keras cannot "
        "fetch it), none, or a PATH to a weights file.",
    ),  # fmt: skip
    force: bool = typer.Option(False, "--force", help="Rebuild models that already exist."),
) -> None:
    """Train the base and fine-tuned MobileNetV2 (.h5) and the CNN (.keras), with a report
    of held-out accuracy, ROC AUC, accuracy by severity and flip consistency."""
    require_tensorflow("train")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    from rich.logging import RichHandler

    console = Console()
    logger = logging.getLogger("hemiface.train")
    logger.addHandler(RichHandler(console=console, show_time=False, show_path=False))
    logger.setLevel(logging.INFO)
    from hemiface.train.names import REPORT_MD
    from hemiface.train.trainer import train_all

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=1)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=escape(stage), completed=done, total=total)

        report = train_all(data, out, quick=quick, weights=weights, force=force,
                           progress=progress)  # fmt: skip
    table = Table(title=escape(f"hemiface train: {out}"))
    for column in ("model", "status", "test acc", "ROC AUC", "flip cons.", "train s"):
        table.add_column(column)
    for m in report.models:
        metrics = m.metrics
        table.add_row(escape(m.title), escape(m.status),
                      f"{metrics.accuracy:.3f}" if metrics else "-",
                      f"{metrics.roc_auc:.3f}" if metrics else "-",
                      f"{metrics.flip_consistency:.3f}" if metrics else "-",
                      f"{m.train_time_s:.0f}")  # fmt: skip
    console.print(table)
    console.print(f"MobileNetV2 weights: {report.weights_used}", markup=False)
    console.print(f"wall time {report.wall_time_s:.0f} s; report: {out / REPORT_MD}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
