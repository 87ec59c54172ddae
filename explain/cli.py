"""`hemiface explain`: Integrated Gradients maps of the models on one image, with trust figures.

TensorFlow is imported only inside the command, after `require_tensorflow`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hemiface.explain.settings import Baseline, ExplainSettings, Label, Rule
from hemiface.runtime.errors import HemifaceError, require_matplotlib, require_tensorflow

if TYPE_CHECKING:
    from rich.table import Table

    from hemiface.explain.api import ExplainReport

RULE_NAMES = ", ".join(rule.value for rule in Rule)


def _parse_steps(value: str) -> int | str:
    """The text of --steps as a number or "auto"; its range is checked by the settings."""
    if value == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        raise HemifaceError(f"--steps must be a whole number or 'auto', got {value!r}") from None


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
    image: Annotated[Path, typer.Argument(help="Image file to explain (JPEG, PNG, ...).")],
    models: Annotated[
        Path,
        typer.Option(
            "--models",
            help="Folder with the Keras models (mobilenetv2_base_model, "
            "mobilenetv2_finetuned_model, cnn_stroke_model as .h5/.keras/SavedModel); without "
            "those names, every model in it.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for the outputs.")] = Path(
        "explain-out"
    ),
    steps: Annotated[
        str,
        typer.Option(
            "--steps", help="Path steps, or 'auto': double from 32 until completeness < 5%."
        ),
    ] = "64",
    rule: Annotated[
        Rule, typer.Option("--rule", help=f"Integration rule: {RULE_NAMES}.")
    ] = Rule.trapezoid,
    baseline: Annotated[
        Baseline,
        typer.Option("--baseline", help="Baseline: black, white, blur or noise (uniform)."),
    ] = Baseline.black,
    baseline_samples: Annotated[
        int,
        typer.Option(
            "--baseline-samples", help="Noise baselines to average (expected-gradients style)."
        ),
    ] = 1,
    target: Annotated[
        Label | None,
        typer.Option(
            "--target", help="Class to explain, Left or Right (default: the predicted one)."
        ),
    ] = None,
    smooth: Annotated[
        int, typer.Option("--smooth", help="SmoothGrad samples over IG (0 = off).")
    ] = 0,
    smooth_sigma: Annotated[
        float,
        typer.Option(
            "--smooth-sigma", help="SmoothGrad noise sigma as a fraction of the input range."
        ),
    ] = 0.15,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", help="Path images per gradient batch; bounds the memory."),
    ] = 8,
    mask: Annotated[
        Path | None,
        typer.Option("--mask", help="Ground-truth lesion mask PNG (same size as the image)."),
    ] = None,
    sanity: Annotated[
        bool,
        typer.Option("--sanity", help="Randomize each model's weights; Spearman of the maps."),
    ] = False,
    sanity_top_layers: Annotated[
        int | None,
        typer.Option(
            "--sanity-top-layers",
            help="Randomize only the top N weighted layers (default all).",
        ),
    ] = None,
    deletion: Annotated[
        bool,
        typer.Option("--deletion", help="Deletion curve and its area, against random order."),
    ] = False,
    face_box: Annotated[
        str | None,
        typer.Option("--face-box", help="X,Y,W,H of the face in image pixels (sets the midline)."),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed for noise baselines, SmoothGrad, sanity.")
    ] = 0,
    no_annotations: Annotated[
        bool,
        typer.Option(
            "--no-annotations",
            help="Ignore the labels.csv of a synthetic data set the image belongs to (its "
            "mask, true label and landmarks are used by default).",
        ),
    ] = False,
    unsafe: Annotated[
        bool,
        typer.Option(
            "--unsafe",
            help="Allow Lambda layers (their code runs on load; trusted files only).",
        ),
    ] = False,
    custom_objects: Annotated[
        Path | None,
        typer.Option(
            "--custom-objects",
            help="Python file that defines (and may register) the models' custom layers; it "
            "is imported, so its code runs: trusted files only.",
        ),
    ] = None,
) -> None:
    """Integrated Gradients of each model on IMAGE: overlays, a comparison figure, explain.json."""
    require_tensorflow("explain")
    require_matplotlib("explain")
    from hemiface.kerasio import quiet_tensorflow

    quiet_tensorflow()
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from hemiface.core.domain import NOTICE
    from hemiface.explain.api import explain_image

    settings = ExplainSettings(
        steps=_parse_steps(steps),
        rule=rule.value,
        baseline=baseline.value,
        baseline_samples=baseline_samples,
        target=target.value if target is not None else None,
        smooth=smooth,
        smooth_sigma=smooth_sigma,
        batch_size=batch_size,
        sanity=sanity,
        sanity_top_layers=sanity_top_layers,
        deletion=deletion,
        seed=seed,
    )
    box = _parse_face_box(face_box)
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
            settings,
            mask=mask,
            face_box=box,
            use_annotations=not no_annotations,
            unsafe=unsafe,
            custom_objects=custom_objects,
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
