"""`hemiface train DATA --out MODELS` or `hemiface train --recipe NAME --out MODELS`: the
three reference models (needs TensorFlow)."""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hemiface.runtime.errors import HemifaceError, require_tensorflow


def train(
    data: Path | None = typer.Argument(
        None, help="Image folder DATA/{train,val,test}/{Left,Right}/ (not with --recipe)."
    ),
    out: Path = typer.Option(Path("models"), "--out", "-o", help="Folder for the models."),
    quick: bool = typer.Option(False, "--quick", help="Small, fast build (fewer epochs)."),
    weights: str = typer.Option(
        "imagenet",
        "--weights",
        help="MobileNetV2 backbone: imagenet (falls back to random init when Keras cannot "
        "fetch it), none, or a PATH to a weights file.",
    ),  # fmt: skip
    force: bool = typer.Option(False, "--force", help="Rebuild models that already exist."),
    recipe: str | None = typer.Option(
        None,
        "--recipe",
        help="Build everything from nothing with a named recipe: 'reference' (the set this "
        "repository ships: synthetic data, a MobileNetV2 backbone pretrained on 115k "
        "synthetic faces, about 1.5 h on 2 cores) or 'quick' (minutes, much weaker).",
    ),
    work: Path | None = typer.Option(
        None,
        "--work",
        help="Recipe work folder (data, backbone checkpoints; resumable). "
        "Default: OUT-work next to OUT.",
    ),  # fmt: skip
) -> None:
    """Train the base and fine-tuned MobileNetV2 (.h5) and the CNN (.keras), with a report
    of held-out accuracy, ROC AUC, accuracy by severity and flip consistency."""
    require_tensorflow("train")
    if (data is None) == (recipe is None):
        raise HemifaceError("give either a DATA folder or --recipe NAME (not both)")
    from hemiface.kerasio import quiet_tensorflow

    quiet_tensorflow()
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    from rich.logging import RichHandler

    console = Console()
    logger = logging.getLogger("hemiface.train")
    logger.addHandler(RichHandler(console=console, show_time=False, show_path=False))
    logger.setLevel(logging.INFO)
    from hemiface.train.names import REPORT_MD

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=1)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=escape(stage), completed=done, total=total)

        if recipe is not None:
            from hemiface.train.recipe import build_recipe, recipe_named

            chosen = recipe_named(recipe)
            folder = work or out.with_name(out.name + "-work")
            summary = build_recipe(chosen, out, folder, force=force, progress=progress)
            _print_heldout(console, summary)
            report_json = out / "training_report.json"
            console.print(f"rebuild: {chosen.command(out)}; work folder {folder}")
            console.print(f"wall time {summary['wall_time_s']:.0f} s; reports: {report_json}, "
                          f"{out / 'heldout_report.json'}")  # fmt: skip
            return
        from hemiface.train.trainer import train_all

        assert data is not None  # DATA is given whenever --recipe is not (checked above)
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


def _print_heldout(console: Console, summary: dict) -> None:
    from hemiface.core.domain import MODEL_TITLES

    heldout = summary["heldout"]
    table = Table(title=f"held-out test set: {heldout['images']} faces, seed {heldout['seed']}")
    for column in ("model", "accuracy", "ROC AUC", "flip cons.", "subtle / moderate / marked"):
        table.add_column(column)
    for name, m in heldout["models"].items():
        bands = m.get("accuracy_by_severity", {})
        band_text = " / ".join(f"{bands[b]['accuracy']:.3f}" if b in bands else "-"
                               for b in ("subtle", "moderate", "marked"))  # fmt: skip
        table.add_row(MODEL_TITLES[name], f"{m['accuracy']:.3f}", f"{m['roc_auc']:.3f}",
                      f"{m['flip_consistency']:.3f}", band_text)  # fmt: skip
    console.print(table)
    backbone = summary["backbone"]
    console.print(f"backbone {backbone['recipe']}: {backbone['steps']} steps, "
                  f"{backbone['images_seen']} faces, {backbone['train_time_s']:.0f} s")  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("train")(train)
