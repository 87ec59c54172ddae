"""`hemiface predict` (image files) and `hemiface run` (camera or video): no TensorFlow.

The options the two commands share are defined once in options.py and read into one
`ModelSetOptions`; `run` turns the rest into one `StreamSettings` for the live loop. This
module is imported for `hemiface --help`, so numpy and OpenCV are imported inside the
commands.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from hemiface.core.errors import printable
from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.options import (
    DEFAULT_MARGIN,
    HAAR_EVERY,
    BackendOption,
    Concurrency,
    Crop,
    DetectorOption,
    FormatOption,
    FuseOption,
    LevelOption,
    MarginOption,
    ModelSetOptions,
    ModelsOption,
    OnlyOption,
    ThreadsOption,
    TrustedKeyOption,
)
from hemiface.runtime.serve.command import serve

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np


CONCURRENCY_HELP = (
    "How the cores are used: sequential, models (interpreters at once), overlap (the next "
    "frame's face step beside this frame's models), both, lanes (one frame a core, side by "
    "side, results in order); auto takes lanes on two or more cores when the detector runs "
    "on every frame, and otherwise measures the others at start and keeps the fastest."
)
# OpenCV takes a C int; V4L2 devices are numbered from 0 and few. 2**40 overflowed.
WINDOW = "hemiface (q or Esc quits)"


def _figure_path(figure: Path, index: int, image: Path, many: bool) -> Path:
    if not many:
        return figure
    return figure.with_name(f"{figure.stem}_{index:03d}_{image.stem}{figure.suffix or '.png'}")


def _check_figure_option(figure: Path) -> None:
    """Problems of --figure that no image can fix: said once, before any work."""
    import cv2

    if not figure.name or figure.is_dir():
        raise HemifaceError(f"{figure}: --figure names a folder; give a file name like out.png")
    if figure.suffix and not cv2.haveImageWriter(f"x{figure.suffix}"):
        raise HemifaceError(
            f"{figure}: --figure: OpenCV cannot write {figure.suffix} images; use .png or .jpg"
        )


def predict(
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or folders of images.")],
    models: ModelsOption,
    fmt: FormatOption = None,
    only: OnlyOption = None,
    crop: Annotated[
        Crop, typer.Option("--crop", help="none (as the notebook), face or center.")
    ] = Crop.none,
    margin: MarginOption = DEFAULT_MARGIN,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per image on stdout.")
    ] = False,
    figure: Annotated[
        Path | None,
        typer.Option(
            "--figure", help="PNG with one title line per model (several images: numbered)."
        ),
    ] = None,
    backend: BackendOption = None,
    threads: ThreadsOption = None,
    detector: DetectorOption = None,
    level: LevelOption = True,
    fuse: FuseOption = True,
    trusted_key: TrustedKeyOption = None,
) -> None:
    """Run every model of a set on image files: per-model label, P(Right), ensemble."""
    from hemiface.runtime.batch import expand_inputs, predict_files
    from hemiface.runtime.images import write_image
    from hemiface.runtime.outputs import InputFiles, check_output
    from hemiface.runtime.overlay import draw_figure

    options = ModelSetOptions.from_options(
        models, fmt, only, backend, threads, fuse, detector, margin, level, trusted_key
    )
    if figure is not None:
        _check_figure_option(figure)
    model_set = options.open()
    finder = options.open_detector() if crop is Crop.face else None
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if not as_json:
        out.print(
            f"model set {escape(printable(str(models)))}: "
            f"format [bold]{escape(model_set.format)}[/] "
            f"({escape(model_set.format_reason)}), {escape(model_set.describe())}, "
            f"{escape(model_set.backend_label)}, {model_set.num_threads} thread(s)"
            + (f"; face detector {escape(finder.name)}" if finder is not None else "")
            + escape(_signed_by(options))
        )
    protected = InputFiles()
    if figure is not None:  # never write a figure over an image of the batch or the set
        protected = InputFiles(path for path, problem in expand_inputs(inputs) if not problem)
        protected.add_model_set(models)
    failures = 0
    results = predict_files(
        inputs,
        model_set,
        crop=crop.value,
        margin=options.margin,
        keep_images=figure is not None,
        detector=finder,
        level=options.level,
    )
    many = len(inputs) > 1 or any(Path(p).is_dir() for p in inputs)
    for index, result in enumerate(results):
        if result.failed:
            failures += 1
            err.print(f"[bold red]error:[/] {escape(printable(str(result.error)))}")
            if as_json:
                print(json.dumps(result.to_json()), flush=True)
            continue
        if as_json:
            print(json.dumps(result.to_json()), flush=True)
        else:
            _print_table(out, result)
        if figure is not None and result.prediction is not None and result.image is not None:
            target = _figure_path(figure, index, result.path, many)
            try:
                check_output(target, protected, "--figure")
                write_image(target, draw_figure(result.image, result.prediction))
            except HemifaceError as exc:  # this image's figure only: the batch goes on
                failures += 1
                err.print(f"[bold red]error:[/] {escape(printable(str(exc)))}")
                continue
            if not as_json:
                out.print(f"figure: {escape(printable(str(target)))}")
    if failures:
        err.print(f"{failures} input(s) could not be used")
        raise typer.Exit(2)


def _signed_by(options: ModelSetOptions) -> str:
    signed = options.signature
    return "" if signed is None else f"; signature verified with {signed.key}"


def _print_table(out: Console, result: object) -> None:
    from hemiface.runtime.batch import ImageResult

    assert isinstance(result, ImageResult)
    if result.prediction is None:
        out.print(f"{escape(printable(str(result.path)))}: no face found (nothing to predict)")
        return
    p = result.prediction
    # File names and the manifest's titles and labels are shown as they are, never as markup.
    table = Table(title=Text(printable(str(result.path))), title_justify="left")
    table.add_column("model")
    table.add_column("label")
    table.add_column("P(Right)", justify="right")
    table.add_column("")
    for m in p.models:
        mark = "uncertain" if m.uncertain else ""
        table.add_row(Text(m.title), Text(m.label), f"{m.p:.3f}", mark)
    table.add_row(
        f"[bold]ensemble[/] ({p.agree}/{len(p.models)} agree)",
        Text(p.label, style="bold"),
        f"{p.mean_p:.3f}",
        "; ".join(
            (["uncertain"] if p.uncertain else [])
            + (["[red]models disagree[/]"] if p.disagree else [])
        ),
        end_section=True,
    )
    out.print(table)
    if result.box is not None:
        turned = f", turned {result.rotation:.1f} deg to level the eyes" if result.rotation else ""
        out.print(f"face box {result.box.as_list()}{turned}")


def run(
    models: ModelsOption,
    camera: Annotated[
        int | None, typer.Option("--camera", help="OpenCV camera index, e.g. 0.")
    ] = None,
    video: Annotated[
        Path | None, typer.Option("--video", help="A video file: every frame, in order.")
    ] = None,
    picamera: Annotated[
        bool, typer.Option("--picamera", help="The Pi CSI camera via Picamera2.")
    ] = False,
    headless: Annotated[
        bool, typer.Option("--headless", help="No window; JSON lines on stdout.")
    ] = False,
    record: Annotated[
        Path | None, typer.Option("--record", help="Write the annotated video (.mp4).")
    ] = None,
    max_frames: Annotated[
        int | None, typer.Option("--max-frames", help="Stop after N frames.")
    ] = None,
    every: Annotated[
        int | None,
        typer.Option(
            "--every",
            help=f"Detect the face every N frames, track between; default 1 with blazeface, "
            f"{HAAR_EVERY} with haar.",
        ),
    ] = None,
    smooth: Annotated[
        float, typer.Option("--smooth", help="EMA weight of the past, 0 (off) to <1.")
    ] = 0.5,
    mirror: Annotated[
        bool, typer.Option("--mirror", help="Mirror the preview, not the models.")
    ] = False,
    crop: Annotated[Crop, typer.Option("--crop", help="face, center or none.")] = Crop.face,
    margin: MarginOption = DEFAULT_MARGIN,
    fmt: FormatOption = None,
    only: OnlyOption = None,
    backend: BackendOption = None,
    threads: ThreadsOption = None,
    width: Annotated[int, typer.Option("--width", help="Camera frame width.")] = 640,
    height: Annotated[int, typer.Option("--height", help="Camera frame height.")] = 480,
    detector: DetectorOption = None,
    level: LevelOption = True,
    fuse: FuseOption = True,
    concurrency: Annotated[
        Concurrency, typer.Option("--concurrency", help=CONCURRENCY_HELP)
    ] = Concurrency.auto,
    trusted_key: TrustedKeyOption = None,
) -> None:
    """The live loop: face crop, every model, smoothed ensemble, overlay (q/Esc quits)."""
    from hemiface.runtime.live import start_live
    from hemiface.runtime.outputs import InputFiles, check_output
    from hemiface.runtime.pipeline import FOURCC_BY_SUFFIX, StreamSettings, run_stream
    from hemiface.runtime.sources import choose_source
    from hemiface.runtime.stopping import stop_signals

    # Checked (nothing opened) before the model set is opened and timed.
    source = choose_source(camera, video, picamera, (width, height))
    options = ModelSetOptions.from_options(
        models, fmt, only, backend, threads, fuse, detector, margin, level, trusted_key
    )
    options.check_signature()  # before the camera or the video is opened
    settings = StreamSettings(  # every: without --every, set below by the detector
        crop=crop.value,
        every=every if every is not None else 1,
        smooth=smooth,
        mirror=mirror,
        record=record,
        max_frames=max_frames,
        margin=options.margin,
        level=options.level,
    )
    if record is not None:
        if record.suffix.lower() not in FOURCC_BY_SUFFIX:
            raise HemifaceError(f"{record}: --record writes .mp4 (mp4v), .avi or .mkv (MJPG)")
        inputs = InputFiles([video] if video is not None else [])
        inputs.add_model_set(models)
        check_output(record, inputs, "--record")
    show = None if headless else _window()
    # The live mode and the detector's own default complete the settings.
    live = start_live(options, settings, every, (width, height), concurrency.value)
    plan, model_set, finder, settings = live.plan, live.model_set, live.detector, live.settings
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    err.print(
        f"{source.name}: models {', '.join(model_set.titles)}, format {model_set.format} "
        f"({model_set.format_reason}), {model_set.describe()}, {model_set.backend_label}; "
        f"live mode {plan.candidate.label} ({plan.reason})"
        + (f"; face detector {finder.name}, every {settings.every} frame(s)" if finder else "")
        + _signed_by(options),
        markup=False,
    )

    def emit(result: object) -> None:
        try:
            print(json.dumps(result.to_json()), flush=True)  # type: ignore[attr-defined]
        except OSError:  # the reader of stdout went away (a closed pipe or terminal): stop
            _silence_stdout()
            raise KeyboardInterrupt from None

    with stop_signals() as stop:
        try:
            stats = run_stream(
                source,
                model_set,
                settings,
                detector=finder,
                on_result=emit if headless else None,
                show=show,
                open_lane=live.open_lane,
            )
        finally:
            model_set.close()
            if show is not None:
                import cv2

                cv2.destroyAllWindows()
    ended = stats.ended
    if ended == "interrupted" and stop.signal is not None:
        ended = f"interrupted by {stop.name}"
    try:
        err.print(
            f"{stats.frames} frames in {stats.seconds:.1f} s ({stats.fps:.1f} FPS), "
            f"{stats.predicted} predicted, {stats.no_face} without a face, "
            f"{stats.reconnects} reconnects; {ended}"
            + (f"; recorded {stats.record}" if stats.record else ""),
            markup=False,
        )
    except OSError:  # no terminal left to say it on (a dropped ssh session)
        pass
    if stats.ended == "interrupted":
        raise typer.Exit(stop.exit_code)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's exit flush cannot fail on a dead pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _window() -> Callable[[np.ndarray], bool]:
    import cv2

    # Without a display, OpenCV's Qt backend aborts the whole process (no exception to
    # catch), so look before opening a window.
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise HemifaceError("no display to show a window on (DISPLAY is not set): use --headless")

    def show(bgr: np.ndarray) -> bool:
        try:
            cv2.imshow(WINDOW, bgr)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error:
            raise HemifaceError("cannot open a window here (no display?): use --headless") from None
        return key in (ord("q"), 27)

    return show


def register(app: typer.Typer) -> None:
    app.command(no_args_is_help=True)(predict)
    app.command(no_args_is_help=True)(run)
    app.command(no_args_is_help=True)(serve)
