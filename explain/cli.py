"""`hemiface explain`: maps of where the models look on an image, with trust figures.

Two paths. `--method ig` (the default for a folder of Keras models): Integrated Gradients on
the Keras models, workstation only; TensorFlow is imported inside the command, after
`require_tensorflow`. `--method occlusion|rise` (the default for a model set): perturbation
maps of the TFLite artifacts, TF-free and matplotlib-free (explain/cli_artifacts.py), so they
run on the Pi too.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hemiface.explain.settings import Baseline, ExplainSettings, Label, Rule
from hemiface.runtime.errors import HemifaceError, require_matplotlib, require_tensorflow

if TYPE_CHECKING:
    from rich.table import Table

    from hemiface.explain.api import ExplainReport

RULE_NAMES = ", ".join(rule.value for rule in Rule)


class Method(str, Enum):
    """Which explanation: where it runs is in the command's help."""

    ig = "ig"
    occlusion = "occlusion"
    rise = "rise"


def _method_for(models: Path, method: Method | None) -> Method:
    """The method asked for, else occlusion for a model set and IG for Keras models."""
    if method is not None:
        return method
    return Method.occlusion if (models / "hemiface.json").is_file() else Method.ig


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
    models: Annotated[
        Path,
        typer.Option(
            "--models",
            help="ig: folder with the Keras models (mobilenetv2_base_model, "
            "mobilenetv2_finetuned_model, cnn_stroke_model as .h5/.keras/SavedModel; without "
            "those names, every model in it). occlusion/rise: a model set (hemiface.json).",
        ),
    ],
    image: Annotated[
        Path | None,
        typer.Argument(help="Image file to explain (JPEG, PNG, ...); or --images DIR."),
    ] = None,
    method: Annotated[
        Method | None,
        typer.Option(
            "--method",
            help="ig: Integrated Gradients of the Keras models, on the workstation "
            "(TensorFlow). occlusion, rise: perturbation maps of the TFLite artifacts, "
            "anywhere (no TensorFlow; the Pi too). Default: occlusion for a model set, ig "
            "for Keras models.",
        ),
    ] = None,
    formats: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            "-f",
            help="occlusion/rise: formats to explain (repeat or comma-separate: float32, "
            "float16, dynamic, int8) or all (default: every verified format).",
        ),
    ] = None,
    images: Annotated[
        Path | None,
        typer.Option(
            "--images",
            help="occlusion/rise: a folder of images instead of IMAGE: the drift table "
            "(medians and worst cases) of every model and format.",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", help="With --images: at most N images, spread evenly."),
    ] = None,
    keras: Annotated[
        Path | None,
        typer.Option(
            "--keras",
            help="occlusion/rise: the Keras models the set was converted from; their IG maps "
            "join the comparison (workstation: needs TensorFlow).",
        ),
    ] = None,
    window: Annotated[
        int, typer.Option("--window", help="occlusion: window side in input pixels.")
    ] = 16,
    stride: Annotated[int, typer.Option("--stride", help="occlusion: window step in pixels.")] = 8,
    masks: Annotated[int, typer.Option("--masks", help="rise: random masks.")] = 1000,
    grid: Annotated[int, typer.Option("--grid", help="rise: mask cells a side.")] = 7,
    keep: Annotated[
        float, typer.Option("--keep", help="rise: probability that a cell is kept.")
    ] = 0.5,
    score: Annotated[
        str,
        typer.Option(
            "--score",
            help="occlusion/rise: what a map measures: the change of the probability "
            "(default) or of the logit (a full-int8 probability saturates at 255/256: for a "
            "confident face its map is flat; the logit's is not).",
        ),
    ] = "probability",
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="occlusion/rise: threads, one interpreter each (default: the physical cores, "
            "at most 4).",
        ),
    ] = None,
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
        typer.Option(
            "--baseline",
            help="IG's baseline, and the fill of occlusion/RISE: black, white, blur or "
            "noise (uniform).",
        ),
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
        typer.Option(
            "--batch-size",
            help="ig: path images per gradient batch; occlusion/rise: images per interpreter "
            "invoke. Bounds the memory.",
        ),
    ] = 8,
    mask: Annotated[
        Path | None,
        typer.Option("--mask", help="Ground-truth lesion mask PNG (same size as the image)."),
    ] = None,
    sanity: Annotated[
        bool,
        typer.Option(
            "--sanity",
            help="Randomize each model's weights (occlusion/rise: shuffle the artifact's); "
            "Spearman of the maps.",
        ),
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
        typer.Option(
            "--deletion",
            help="Deletion curve and its area, against random order (occlusion/rise: and "
            "the insertion curve).",
        ),
    ] = False,
    face_box: Annotated[
        str | None,
        typer.Option("--face-box", help="X,Y,W,H of the face in image pixels (sets the midline)."),
    ] = None,
    seed: Annotated[
        int,
        typer.Option("--seed", help="Seed for noise baselines, SmoothGrad, sanity, RISE masks."),
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
    """Where each model looks on IMAGE: maps, figures and trust figures.

    ig: Integrated Gradients on the Keras models. Workstation only (TensorFlow, matplotlib).

    occlusion, rise: perturbation maps of a model set's TFLite artifacts, one per format.

    They run anywhere, the Pi too (no TensorFlow, no matplotlib); formats are compared.
    """
    chosen = _method_for(models, method)
    if chosen is not Method.ig:
        from hemiface.explain.cli_artifacts import (
            ArtifactOptions,
            ArtifactRun,
            explain_artifacts_command,
            parse_formats,
        )

        run = ArtifactRun(models, out, parse_formats(formats), image, images, limit, keras,
                          mask, _parse_face_box(face_box), not no_annotations)  # fmt: skip
        options = ArtifactOptions(window, stride, masks, grid, keep, workers, baseline.value,
                                  target.value if target else None, deletion, sanity,
                                  batch_size, seed, score)  # fmt: skip
        explain_artifacts_command(chosen.value, run, options, _parse_steps(steps))
        return
    if image is None:
        raise HemifaceError(
            "give an IMAGE to explain (--images DIR needs --method occlusion or rise)"
        )
    require_tensorflow("explain")
    require_matplotlib("explain")
    from hemiface.kerasio import quiet_tensorflow

    quiet_tensorflow()
    from rich.console import Console
    from rich.markup import escape

    from hemiface.core.domain import NOTICE
    from hemiface.explain.api import explain_image
    from hemiface.explain.cli_artifacts import TaskBars

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
    bars = TaskBars(err)

    def progress(title: str, advance: int, total: int) -> None:
        task = bars.task(f"IG {escape(title)}", total)
        done = bars.bar.tasks[task].completed + advance
        # --steps auto may go past the first estimate; grow the bar instead of stalling.
        bars.bar.update(task, advance=advance, total=max(total, done))

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
        bars.stop()

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
