"""`hemiface synth OUT`: write a labelled synthetic face data set (numpy + OpenCV only)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def synth(
    out: Path = typer.Argument(..., help="Folder to write (must be empty or new)."),
    count: int = typer.Option(3000, "--count", "-n", help="Number of images."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives the same images."),
    size: int = typer.Option(224, "--size", help="Image width and height in pixels."),
    force: bool = typer.Option(False, "--force", help="Replace a data set already in OUT."),
    workers: int = typer.Option(1, "--workers", help="Processes rendering in parallel."),
) -> None:
    """Procedural faces with one-sided droop: OUT/{train,val,test}/{Left,Right}/*.jpg,
    OUT/labels.csv (severity, landmarks) and a droop mask per image under OUT/masks/."""
    from hemiface.synth.dataset import generate_dataset

    console = Console()
    columns = (TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("synth", total=count)
        summary = generate_dataset(
            out, count, seed=seed, size=size, overwrite=force, workers=workers,
            progress=lambda done: bar.update(task, completed=done),
        )  # fmt: skip
    parts = ", ".join(
        f"{split} {sum(labels.values())} ({labels['Left']} Left / {labels['Right']} Right)"
        for split, labels in summary.counts.items()
    )
    console.print(
        f"wrote {summary.count} images ({size}x{size}, seed {seed}) to {out}: {parts}", markup=False
    )
    console.print(
        f"{summary.wall_time_s:.1f} s, {summary.images_per_s:.0f} images/s; "
        f"labels in {out / 'labels.csv'}, masks in {out / 'masks'}",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
