"""`hemiface demo`: the command, its progress display and its closing summary."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import typer

from hemiface.core.domain import NOTICE
from hemiface.demo.runner import STAGE_NAMES, StageResult, run_demo
from hemiface.runtime.errors import require_tensorflow


def demo(
    out: Path = typer.Option(Path("hemiface-demo"), "--out", help="Folder for everything."),
    quick: bool = typer.Option(
        False, "--quick", help="A smaller data set (and, with --retrain, the quick recipe)."
    ),
    retrain: bool = typer.Option(
        False,
        "--retrain",
        help="Train the three models from nothing instead of using the shipped reference "
        "set: the 'reference' recipe (about 1.5 h on 2 cores), or with --quick the 'quick' "
        "recipe (minutes, much weaker models).",
    ),
) -> None:
    """Run the whole toolkit on built-in synthetic faces: data, train, convert, run, explain,
    bench, and a walk-through (OUT/index.md, OUT/index.html)."""
    require_tensorflow("demo")
    from hemiface.kerasio import quiet_tensorflow

    quiet_tensorflow()
    # Keras warns through absl (e.g. "saving as HDF5 is legacy": the users' format, on
    # purpose); our own progress display and summary are what the terminal should show.
    logging.getLogger("absl").setLevel(logging.ERROR)
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console()
    console.print(f"[bold]hemiface demo[/] - {escape(NOTICE)}")
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.fields[stage]:>8}[/]"),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        # The bar goes when the run ends (only the stage lines stay), and is not drawn at
        # all where nothing can redraw it (a pipe, a log file).
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("", total=1, stage="")
        current = {"stage": STAGE_NAMES[0]}

        def progress(what: str, done: int, total: int) -> None:
            bar.update(task, description=escape(what), completed=done, total=max(total, 1),
                       stage=current["stage"])  # fmt: skip

        def on_stage(result: StageResult) -> None:
            colour = {"ok": "green", "failed": "red", "skipped": "yellow"}[result.status]
            detail = f" - {escape(result.detail)}" if result.detail else ""
            bar.console.print(
                f"[{colour}]{result.status:>7}[/] {result.name} ({result.seconds:.1f} s){detail}"
            )
            index = STAGE_NAMES.index(result.name)
            if index + 1 < len(STAGE_NAMES):
                current["stage"] = STAGE_NAMES[index + 1]

        if retrain:
            recipe = "quick" if quick else "reference"
            length = "a few minutes" if quick else "about 1.5 hours on 2 cores"
            bar.console.print(f"--retrain: the '{recipe}' recipe trains from nothing ({length})")
        results = run_demo(out, quick, progress, on_stage, retrain=retrain)
    failed = [r.name for r in results.values() if r.status != "ok"]
    console.print(
        f"\n{len(results) - len(failed)}/{len(results)} stages succeeded in "
        f"{time.perf_counter() - started:.0f} s. Walk-through: {out / 'index.md'} "
        f"and {out / 'index.html'}",
        markup=False,
    )
    if failed:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command(name="demo")(demo)
