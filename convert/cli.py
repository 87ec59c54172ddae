"""`hemiface convert`: Keras models to a verified TFLite model set. TensorFlow is imported
inside the command, never at module level."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from hemiface.runtime.errors import require_tensorflow
from hemiface.runtime.manifest import FORMATS


def _parse_formats(values: list[str] | None) -> list[str]:
    if not values:
        return list(FORMATS)
    # Accept both `--formats float32 --formats int8` and `--formats float32,int8`.
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def convert(
    models: list[Path] = typer.Argument(
        ...,
        help="Keras models: .h5 or .keras files of Keras 3 or Keras 2 (read with tf-keras), or "
        "SavedModel folders. A file that fails is reported and the others are converted.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder of the model set to write."),
    formats: list[str] = typer.Option(
        None,
        "--formats",
        "-f",
        help="Formats to make (repeat or comma-separate): float32, float16, dynamic, int8. "
        "Default: all.",
    ),
    calib: str = typer.Option(
        None,
        "--calib",
        help="Calibration images for full int8: an image folder (class subfolders allowed; "
        "100-500 images sampled evenly), or 'synthetic'.",
    ),
    verify: Path = typer.Option(
        None,
        "--verify",
        help="Labelled image folder (Left/, Right/) to verify every artifact against its "
        "Keras source. Default: the calibration folder.",
    ),
    int8_io: str = typer.Option(
        "int8",
        "--int8-io",
        help="Input/output type of the full-int8 model: int8 (default: no QUANTIZE ops at the "
        "edges, so the whole graph is one XNNPACK partition), uint8 or float.",
    ),
    target: str = typer.Option(
        None,
        "--target",
        help="Convert so that every artifact loads in this interpreter: tflite-runtime-2.14.",
    ),
    max_flip_rate: float = typer.Option(
        None,
        "--max-flip-rate",
        help="Exit non-zero when an artifact's label disagrees with Keras on more than this "
        "share of the verification images (the artifact is still written, marked failed).",
    ),
    names: list[str] = typer.Option(
        None, "--name", help="Model name for each MODEL, in order (default: the file name)."
    ),
    unsafe: bool = typer.Option(
        False, "--unsafe", help="Allow Lambda layers (their code runs on load): trusted files only."
    ),
    custom_objects: Path = typer.Option(
        None,
        "--custom-objects",
        help="Python file that defines (and may register) the models' custom layers; it is "
        "imported, so its code runs: trusted files only.",
    ),
    output_index: int = typer.Option(
        None, "--output-index", help="Which output of a multi-output model to convert."
    ),
    runtime_python: list[Path] = typer.Option(
        None,
        "--runtime-python",
        help="Another Python (e.g. a venv with tflite-runtime 2.14) in which to try loading "
        "each artifact; also read from $HEMIFACE_TFLITE_RUNTIME_PYTHON.",
    ),
    fuse: bool = typer.Option(
        True,
        "--fuse/--no-fuse",
        help="Also write a fused artifact per format for models whose leading layers are "
        "bit-identical (a fine-tuned sibling of a frozen backbone): the shared trunk once.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Convert Keras models to TFLite (float32, float16, dynamic, int8), verify each against
    its source, check which interpreters load it, and write the model set's manifest."""
    require_tensorflow("convert")
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from hemiface.convert.pipeline import convert_models
    from hemiface.convert.render import summary_table
    from hemiface.kerasio import quiet_tensorflow

    quiet_tensorflow()
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]convert[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json or not console.is_terminal,
    ) as bar:
        task = bar.add_task("loading models", total=None)

        def progress(message: str, done: int, total: int) -> None:
            bar.update(task, description=escape(message), completed=done, total=total)

        summary = convert_models(
            models,
            out,
            formats=_parse_formats(formats),
            calib=calib,
            verify=verify,
            int8_io=int8_io,
            target=target,
            max_flip_rate=max_flip_rate,
            unsafe=unsafe,
            names=names or None,
            progress=progress,
            output_index=output_index,
            runtime_python=runtime_python or None,
            custom_objects=custom_objects,
            fuse=fuse,
        )
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        stdout = Console()
        # Piped output has no width: use one wide enough for the table instead of 80.
        stdout = stdout if stdout.is_terminal else Console(width=140)
        stdout.print(summary_table(summary))
        for note in summary.notes:
            stdout.print(f"note: {note}", highlight=False, markup=False)
        stdout.print(f"manifest: {summary.manifest}", highlight=False, markup=False)
    if summary.failed:
        # One line each, never wrapped, so that a log or a script sees every failure whole.
        lines = list(summary.load_failures)
        lines += [f"{row.file}: {problem}" for row in summary.rows for problem in row.problems]
        for line in lines:
            console.print(f"[bold red]failed:[/] {escape(line)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("convert")(convert)
