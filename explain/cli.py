"""`hemiface explain`: Integrated Gradients maps of the models on one image, with trust figures.

TensorFlow is imported only inside the command, after `require_tensorflow`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hemiface.runtime.errors import HemifaceError, require_matplotlib, require_tensorflow

if TYPE_CHECKING:
    from rich.table import Table

    from hemiface.explain.api import ExplainReport

RULE_NAMES = "trapezoid, riemann_left, riemann_right, riemann_middle, gauss_legendre"


def _parse_steps(value: str) -> int | str:
    if value == "auto":
        return "auto"
    try:
        steps = int(value)
    except ValueError:
        raise HemifaceError(f"--steps must be a whole number or 'auto', got {value!r}") from None
    if steps < 1:
        raise HemifaceError(f"--steps must be at least 1, got {steps}")
    return steps


def _parse_face_box(value: str | None) -> tuple[int, int, int, int] | None:
    if value is None:
        return None
    parts = value.split(",")
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise HemifaceError(f"--face-box must be X,Y,W,H in pixels, got {value!r}") from None
    return x, y, w, h


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def explain(
    image: Path = typer.Argument(..., help="Image file to explain (JPEG, PNG, ...)."),
    models: Path = typer.Option(
        ...,
        "--models",
        help="Folder with the Keras models (mobilenetv2_base_model, mobilenetv2_finetuned_model,"
        " cnn_stroke_model as .h5/.keras/SavedModel); without those names, every model in it.",
    ),
    out: Path = typer.Option(Path("explain-out"), "--out", help="Folder for the outputs."),
    steps: str = typer.Option(
        "64", "--steps", help="Path steps, or 'auto': double from 32 until completeness < 5%."
    ),
    rule: str = typer.Option("trapezoid", "--rule", help=f"Integration rule: {RULE_NAMES}."),
    baseline: str = typer.Option(
        "black", "--baseline", help="Baseline: black, white, blur or noise (uniform)."
    ),
    baseline_samples: int = typer.Option(
        1, "--baseline-samples", help="Noise baselines to average (expected-gradients style)."
    ),
    target: str | None = typer.Option(
        None, "--target", help="Class to explain, Left or Right (default: the predicted one)."
    ),
    smooth: int = typer.Option(0, "--smooth", help="SmoothGrad samples over IG (0 = off)."),
    smooth_sigma: float = typer.Option(
        0.15, "--smooth-sigma", help="SmoothGrad noise sigma as a fraction of the input range."
    ),
    batch_size: int = typer.Option(
        8, "--batch-size", help="Path images per gradient batch; bounds the memory."
    ),
    mask: Path | None = typer.Option(
        None, "--mask", help="Ground-truth lesion mask PNG (same size as the image)."
    ),
    sanity: bool = typer.Option(
        False, "--sanity", help="Randomize each model's weights; Spearman of the maps."
    ),
    sanity_top_layers: int | None = typer.Option(
        None, "--sanity-top-layers", help="Randomize only the top N weighted layers (default all)."
    ),
    deletion: bool = typer.Option(
        False, "--deletion", help="Deletion curve and its area, against random order."
    ),
    face_box: str | None = typer.Option(
        None, "--face-box", help="X,Y,W,H of the face in image pixels (sets the midline)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for noise baselines, SmoothGrad, sanity."),
    no_annotations: bool = typer.Option(
        False,
        "--no-annotations",
        help="Ignore the labels.csv of a synthetic data set the image belongs to (its mask,"
        " true label and landmarks are used by default).",
    ),
    unsafe: bool = typer.Option(
        False, "--unsafe", help="Allow Lambda layers (their code runs on load; trusted files only)."
    ),
    custom_objects: Path | None = typer.Option(
        None,
        "--custom-objects",
        help="Python file that defines (and may register) the models' custom layers; it is "
        "imported, so its code runs: trusted files only.",
    ),
) -> None:
    """Integrated Gradients of each model on IMAGE: overlays, a comparison figure, explain.json."""
    require_tensorflow("explain")
    require_matplotlib("explain")
    from hemiface.kerasio import quiet_tensorflow

    quiet_tensorflow()
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from hemiface.explain.api import NOTICE, explain_image

    parsed_steps = _parse_steps(steps)
    console = Console()
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,  # the table below replaces the bars
    )
    tasks: dict[str, int] = {}

    def progress(title: str, advance: int, total: int) -> None:
        if not tasks:
            bar.start()  # only now: an early error leaves no empty bar behind
        if title not in tasks:
            tasks[title] = bar.add_task(f"IG {escape(title)}", total=total)
        task = tasks[title]
        done = bar.tasks[task].completed + advance
        # --steps auto may go past the first estimate; grow the bar instead of stalling.
        bar.update(task, advance=advance, total=max(total, done))

    try:
        report = explain_image(
            image,
            models,
            out,
            steps=parsed_steps,
            rule=rule,
            baseline=baseline,
            baseline_samples=baseline_samples,
            target=target,
            smooth=smooth,
            smooth_sigma=smooth_sigma,
            batch_size=batch_size,
            mask=mask,
            sanity=sanity,
            sanity_top_layers=sanity_top_layers,
            deletion=deletion,
            face_box=_parse_face_box(face_box),
            seed=seed,
            unsafe=unsafe,
            custom_objects=custom_objects,
            use_annotations=not no_annotations,
            progress=progress,
        )
    finally:
        if tasks:
            bar.stop()

    console.print(_summary_table(report))
    console.print(
        "compl. = completeness error |sum attr - (F(x) - F(x'))| / |F(x) - F(x')|; "
        "img L:R side = positive attribution on the image's left:right half and the patient "
        "side it points to; mask in/area = share of |attr| in the lesion mask / its area.\n"
        f"midline: {report.midline['source']}; {report.convention}.\n"
        + (f"mask: {report.mask}\n" if report.mask is not None else "")
        + f"wrote {report.files['comparison']}, {report.files['json']}, overlays and .npy maps "
        f"in {report.out} ({report.seconds['total']:.1f} s, of which importing TensorFlow "
        f"{report.seconds['import_tensorflow']:.1f} s)\n{NOTICE}",
        markup=False,
    )
    for failure in report.failures:
        err.print(f"[bold red]error:[/] {escape(str(failure['error']))}", markup=True)
    if report.failures:
        raise typer.Exit(1)


def _summary_table(report: ExplainReport) -> Table:
    from rich.markup import escape
    from rich.table import Table

    truth = report.annotation
    title = f"Integrated Gradients: {Path(report.image).name}"
    if truth:
        title += f" (true label {truth['label']}, severity {truth['severity']:.2f})"
    title = escape(title)
    settings = report.settings
    columns = ["model", "P(R) pred", "expl.", "compl.", "img L:R side"]
    if report.mask is not None:
        columns.append("mask in/area")
    if settings.sanity:
        columns.append("sanity rho")
    if settings.deletion:
        columns.append("del./random")
    columns.append("s")
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for model in report.models:
        side = model.laterality
        lateral = "n/a"
        if side["points_to_patient_side"] is not None:
            lateral = (
                f"{100 * side['image_left_share']:.0f}:{100 * side['image_right_share']:.0f}"
                f" {side['points_to_patient_side']}"
            )
        completeness = _percent(model.completeness_error)
        if settings.steps == "auto":
            completeness += f" @{model.steps}"
        if not model.completeness_ok:
            completeness += " (!)"
        row = [escape(model.title), f"{model.p_right:.2f} {model.predicted}", model.explained]
        row += [completeness, lateral]
        if report.mask is not None:
            found = model.mask or {}
            inside, area = found.get("share_inside_mask"), found.get("mask_area_share")
            hit = "hit" if found.get("pointing_game_hit") else "miss"
            row.append(f"{_percent(inside)[:-1]}/{_percent(area)} {hit}")
        if settings.sanity:
            rho = (model.sanity or {}).get("spearman_abs")
            row.append("n/a" if rho is None else f"{rho:.2f}")
        if settings.deletion:
            curve = model.deletion or {}
            row.append(f"{curve.get('auc', 0):.2f}/{curve.get('auc_random', 0):.2f}")
        row.append(f"{model.seconds['load'] + model.seconds['explain']:.1f}")
        table.add_row(*row)
    return table


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)
