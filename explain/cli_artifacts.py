"""`hemiface explain --method occlusion|rise`: the TF-free path, on a model set's artifacts.

Imports neither TensorFlow nor matplotlib unless `--keras` asks for IG maps to compare with
(workstation). Renders the report with rich.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hemiface.core.domain import NOTICE
from hemiface.explain.artifact_explain import ArtifactExplainSettings
from hemiface.runtime.errors import HemifaceError, require_tensorflow
from hemiface.runtime.manifest import FORMATS


@dataclass(frozen=True)
class ArtifactRun:
    """Where the artifact path reads and writes, besides the settings."""

    model_set: Path
    out: Path
    formats: list[str] | None  # None: every usable format (see parse_formats)
    image: Path | None = None
    images: Path | None = None  # a folder: the drift table
    limit: int | None = None
    keras: Path | None = None  # Keras models: IG maps to compare with (workstation)
    mask: Path | None = None
    face_box: tuple[int, int, int, int] | None = None
    use_annotations: bool = True


@dataclass(frozen=True)
class ArtifactOptions:
    """The command line's settings of the occlusion/RISE path, as typed."""

    window: int
    stride: int
    masks: int
    grid: int
    keep: float
    workers: int | None
    fill: str
    target: str | None
    deletion: bool
    sanity: bool
    batch: int
    seed: int
    score: str


def explain_artifacts_command(
    method: str, run: ArtifactRun, options: ArtifactOptions, steps: int | str
) -> None:
    """Check the options, build the settings and run (the `explain` command's other path)."""
    from hemiface.explain.occlusion import OcclusionSettings
    from hemiface.explain.rise import RiseSettings

    if (run.image is None) == (run.images is None):
        raise HemifaceError("give either an IMAGE or --images DIR")
    settings = ArtifactExplainSettings(
        method=method,
        occlusion=OcclusionSettings(
            window=options.window, stride=options.stride, fill=options.fill
        ),
        rise=RiseSettings(
            masks=options.masks,
            grid=options.grid,
            keep=options.keep,
            fill=options.fill,
            seed=options.seed,
        ),  # fmt: skip
        target=options.target,
        deletion=options.deletion,
        sanity=options.sanity,
        workers=options.workers,
        batch=options.batch,
        seed=options.seed,
        score=options.score,
    )
    run_artifacts(run, settings, steps)


def parse_formats(values: list[str] | None) -> list[str] | None:
    """--format values (repeated or comma-separated); "all" or nothing: None (every usable)."""
    if not values:
        return None
    names = [v.strip() for value in values for v in value.split(",") if v.strip()]
    if "all" in names:
        return None
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise HemifaceError(
            f"--format {', '.join(unknown)}: choose from {', '.join(FORMATS)} or all"
        )
    return names


def _ig_provider(run: ArtifactRun, settings_seed: int, steps: int | str):  # noqa: ANN202
    if run.keras is None:
        return None
    require_tensorflow("explain --keras")
    from hemiface.explain.ig_maps import KerasIGMaps
    from hemiface.explain.settings import ExplainSettings
    from hemiface.kerasio import quiet_tensorflow

    quiet_tensorflow()
    return KerasIGMaps(run.keras, ExplainSettings(steps=steps, seed=settings_seed))


class TaskBars:
    """Transient progress bars on `console`, one for each titled task. They start with the
    first task (so an early error leaves no empty bar behind) and go when stopped."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,  # the results printed after replace the bars
        )
        self.tasks: dict[str, Any] = {}

    def task(self, title: str, total: int) -> Any:
        """The task of this title (its description is `title` as it is: escape it first)."""
        if not self.tasks:
            self.bar.start()
        if title not in self.tasks:
            self.tasks[title] = self.bar.add_task(title, total=total)
        return self.tasks[title]

    def stop(self) -> None:
        if self.tasks:
            self.bar.stop()


def run_artifacts(run: ArtifactRun, settings: ArtifactExplainSettings, steps: int | str) -> None:
    """Explain one image (or a folder's drift table) with the artifacts; print the result."""
    console = Console()
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if run.model_set.is_dir() and not (run.model_set / "hemiface.json").is_file():
        raise HemifaceError(
            f"{run.model_set}: no hemiface.json; --method {settings.method} explains a model "
            "set's TFLite artifacts (make one with `hemiface convert`)"
        )
    provider = _ig_provider(run, settings.seed, steps)
    bars = TaskBars(err)

    def advance(title: str, done: int, total: int) -> None:
        bars.bar.update(bars.task(escape(title), total), completed=done, total=total)

    try:
        if run.images is not None:
            from hemiface.explain.artifact_folder import drift_markdown, explain_folder

            folder_report = explain_folder(
                run.images, run.model_set, run.out, settings, formats=run.formats,
                limit=run.limit, ig_provider=provider,
                progress=lambda d, t: advance("images", d, t),
            )  # fmt: skip
            bars.stop()
            console.print(drift_markdown(folder_report), markup=False)
            console.print(
                f"wrote {folder_report.files['markdown']} and {folder_report.files['json']} "
                f"({folder_report.seconds['total']:.1f} s)",
                markup=False,
            )
            for skipped in folder_report.skipped:
                err.print(f"skipped: {skipped['error']}", markup=False)
            return
        assert run.image is not None
        from hemiface.explain.artifact_report import explain_artifacts

        ig_maps = None
        if provider is not None:
            from hemiface.runtime.images import read_image

            ig_maps = provider(run.image, read_image(run.image))
        report = explain_artifacts(
            run.image, run.model_set, run.out, settings, formats=run.formats, mask=run.mask,
            face_box=run.face_box, use_annotations=run.use_annotations, ig_maps=ig_maps,
            progress=lambda fmt, d, t: advance(f"{settings.method} {fmt}", d, t),
        )  # fmt: skip
    finally:
        bars.stop()
    console.print(_table(report))
    console.print(
        f"P(R) = P(Right) of the unperturbed image; mask = share of |map| in the lesion mask "
        f"over its share of the image; rho / IoU = rank correlation / top-10% overlap with the "
        f"{report.reference_format} map (8-px cells); sanity = rank correlation of |map| with "
        "the same artifact's map after shuffling its weights (near 0 is good); del./ins. = "
        "area under the deletion / insertion curve over random orders.\n"
        f"midline: {report.midline['source']}; {report.convention}.\n"
        f"wrote {report.files['figure']}, {report.files['json']}, maps and overlays in "
        f"{report.out} (explain {report.seconds['explain']:.1f} s, total "
        f"{report.seconds['total']:.1f} s)\n{NOTICE}",
        markup=False,
    )


def _table(report) -> Table:  # noqa: ANN001 - ArtifactReport, imported lazily
    table = Table(title=escape(f"{report.method}: {Path(report.image).name}"))
    columns = ["model", "format", "P(R)", "expl.", "side"]
    has_mask = report.mask is not None
    first = report.models[0].formats[0]
    columns += ["mask"] if has_mask else []
    columns += ["rho", "IoU"]
    columns += ["rho IG"] if report.models[0].ig is not None else []
    columns += ["sanity"] if first.sanity is not None else []
    columns += ["del./ins."] if first.deletion is not None else []
    for column in columns:
        table.add_column(column)
    for model in report.models:
        for result in model.formats:
            side = result.laterality["points_to_patient_side"] or "n/a"
            row = [
                escape(model.title),
                result.format,
                f"{result.p_right:.3f}",
                result.explained,
                side,
            ]
            if has_mask:
                ratio = (result.mask or {}).get("ratio_to_area_share")
                row.append("n/a" if ratio is None else f"{ratio:.1f}x")
            ref = result.vs_reference or {}
            row.append("ref" if result.vs_reference is None else _fmt(ref.get("spearman")))
            row.append("ref" if result.vs_reference is None else _fmt(ref.get("top10_iou")))
            if model.ig is not None:
                row.append(_fmt((result.vs_ig or {}).get("spearman")))
            if result.sanity is not None:
                row.append(_fmt(result.sanity.get("spearman_abs")))
            if result.deletion is not None and result.insertion is not None:
                row.append(
                    f"{_fmt(result.deletion['auc_ratio_to_random'])}/"
                    f"{_fmt(result.insertion['auc_ratio_to_random'])}"
                )
            table.add_row(*row)
    return table


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
