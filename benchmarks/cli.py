"""`hemiface bench`: latency, memory, cold start, agreement and pipeline FPS."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from hemiface.benchmarks.sections import BenchResults
from hemiface.runtime.errors import HemifaceError, require_tensorflow
from hemiface.runtime.options import Backend


def register(app: typer.Typer) -> None:
    app.command(name="bench")(bench)


def bench(
    tflite: Annotated[Path, typer.Option("--tflite", help="Model set: *.tflite + hemiface.json.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for results.json, report.md, PNGs.")],
    keras: Annotated[
        Path | None,
        typer.Option(
            "--keras",
            help="Folder of the Keras sources (.keras/.h5 of Keras 3 or 2, SavedModel folders), "
            "for the Keras rows and agreement. Without it the Keras rows are skipped.",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Labelled folder (Left/ and Right/, or a test/ split) for agreement.",
        ),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Restrict to models (name or title), formats (float32, float16, dynamic, int8), "
            "engines (keras, predict, call, tflite) or sections (latency, set, agreement, "
            "pipeline; and the studies run only when named: detectors, Haar against "
            "BlazeFace; int8-io, full int8 with int8 against uint8 I/O, needs --keras and "
            "--data); repeat or comma-separate. Kinds not named run in full. Engines choose "
            "latency rows; agreement always compares with the Keras sources when --keras is "
            "given.",
        ),
    ] = None,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="A short run: 10 timed runs, 1 thread, <=32 images, 30 frames, the live loop "
            "before and after only.",
        ),
    ] = False,
    n: Annotated[
        int, typer.Option("--n", min=1, help="Timed single-image runs per row (at least).")
    ] = 100,
    min_time: Annotated[
        float, typer.Option("--min-time", min=0.0, help="Seconds per row (at least).")
    ] = 2.0,
    warmup: Annotated[
        int, typer.Option("--warmup", min=0, help="Untimed runs before timing.")
    ] = 10,
    threads: Annotated[
        str,
        typer.Option("--threads", help="Interpreter thread counts, capped at the core count."),
    ] = "1,2,4",
    images: Annotated[
        int | None,
        typer.Option("--images", min=2, help="Use at most this many labelled images (balanced)."),
    ] = None,
    frames: Annotated[
        int, typer.Option("--frames", min=5, help="Frames of the pipeline video.")
    ] = 150,
    video: Annotated[
        Path | None,
        typer.Option(
            "--video", help="Video for the pipeline FPS (default: a generated 640x480 one)."
        ),
    ] = None,
    backend: Annotated[
        Backend | None,
        typer.Option(
            "--backend", help="Interpreter: ai-edge-litert, tflite-runtime or tensorflow."
        ),
    ] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write PNG plots.")] = True,
    unsafe: Annotated[
        bool,
        typer.Option(
            "--unsafe",
            help="Allow Lambda layers in the Keras sources (their code runs on load): trusted "
            "only.",
        ),
    ] = False,
    custom_objects: Annotated[
        Path | None,
        typer.Option(
            "--custom-objects",
            help="Python file that defines the Keras sources' custom layers; it is imported, so "
            "its code runs: trusted files only.",
        ),
    ] = None,
    detector_seed: Annotated[
        int | None,
        typer.Option(
            "--detector-seed",
            min=0,
            help="Seed of the detectors section's synthetic faces (the face-free scenes take "
            "the next one); default: the section's own.",
        ),
    ] = None,
) -> None:
    """Benchmark every model x engine x format: latency, memory, cold start, agreement, FPS."""
    params = dict(locals())

    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from hemiface.benchmarks.bench import BenchConfig, command_line, quick_timing, run_bench
    from hemiface.benchmarks.latency import TimingSettings
    from hemiface.benchmarks.output import write_outputs

    try:
        thread_list = [int(t) for t in threads.split(",") if t.strip()]
    except ValueError:
        raise HemifaceError(f"--threads {threads!r}: expected numbers like 1,2,4") from None
    if not thread_list or min(thread_list) < 1:
        raise HemifaceError(f"--threads {threads!r}: thread counts must be >= 1")
    if quick:
        timing = quick_timing(thread_list)
        images = min(images or 32, 32)
        frames = min(frames, 30)
    else:
        timing = TimingSettings(warmup=warmup, n=n, min_time_s=min_time, threads=thread_list)
    invocation = _invocation(params)
    needs_tf = keras is not None
    if needs_tf:
        require_tensorflow("bench --keras")
    if plots:
        from hemiface.runtime.errors import require_matplotlib

        require_matplotlib("bench")
    from hemiface.kerasio import quiet_tensorflow

    quiet_tensorflow()
    config = BenchConfig(
        tflite_dir=tflite,
        out_dir=out,
        keras_dir=keras,
        data_dir=data,
        only=list(only or []),
        timing=timing,
        agreement_limit=images,
        pipeline_frames=frames,
        video=video,
        backend=backend.value if backend is not None else None,
        quick=quick,
        unsafe=unsafe,
        custom_objects=custom_objects,
        detector_seed=detector_seed,
        command=command_line(invocation),
        argv=invocation,
    )
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("bench", total=None)
        state = {"started": False}

        def step(description: str) -> None:
            if state["started"]:
                progress.advance(task)
            state["started"] = True
            progress.update(task, description=escape(description))

        results = run_bench(config, step, lambda total: progress.update(task, total=total))
        progress.advance(task)
    written = write_outputs(results.to_json(), out, plots)
    for line in results.headline:
        console.print(f"  {line}", highlight=False, markup=False)
    failed = count_failures(results)
    console.print(f"wrote {', '.join(str(p) for p in written)}", highlight=False, markup=False)
    if failed:
        console.print(f"[bold red]{failed} row(s) failed[/]; see report.md")
        raise typer.Exit(1)


def count_failures(results: BenchResults) -> int:
    failed = [r.status for r in results.latency.rows].count("failed")
    failed += [r.status for r in results.pipeline.rows].count("failed")
    failed += len(results.agreement.failures or [])
    statuses = [results.agreement.status, results.pipeline.status, results.set.status]
    statuses += [s.status for s in (results.detectors, results.int8_io) if s is not None]
    return failed + statuses.count("failed")


def _invocation(params: dict) -> list[str]:
    """The command's arguments: sys.argv when run as `hemiface bench ...`, else (called
    in-process, e.g. by tests) rebuilt from the parsed parameters."""
    if sys.argv[1:2] == ["bench"]:
        return sys.argv[1:]
    args = ["bench"]
    for key, value in params.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            item = item.value if isinstance(item, Enum) else item
            flag = "--" + key.replace("_", "-")
            if item is False:
                args += ["--no-plots"] if key == "plots" else []
            elif item is True:
                args += [] if key == "plots" else [flag]
            elif item is not None:
                args += [flag, str(item)]
    return args
