"""`hemiface convert`: Keras models to a verified TFLite model set. TensorFlow is imported
inside the command, never at module level."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from hemiface.runtime.errors import HemifaceError, require_tensorflow
from hemiface.runtime.manifest import FORMATS


class Int8IO(str, Enum):
    """Input/output type of the full-int8 model (tflite_convert.INT8_IO)."""

    uint8 = "uint8"
    int8 = "int8"
    float = "float"


class Target(str, Enum):
    """Interpreters an artifact can be made to load in (compat.TARGETS)."""

    tflite_runtime_2_14 = "tflite-runtime-2.14"


def _parse_formats(values: list[str] | None) -> list[str]:
    if not values:
        return list(FORMATS)
    # Accept both `--formats float32 --formats int8` and `--formats float32,int8`.
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def convert(
    models: Annotated[
        list[Path],
        typer.Argument(
            help="Keras models: .h5 or .keras files of Keras 3 or Keras 2 (read with tf-keras), "
            "or SavedModel folders. A file that fails is reported and the others are converted.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder of the model set to write.")],
    formats: Annotated[
        list[str] | None,
        typer.Option(
            "--formats",
            "-f",
            help="Formats to make (repeat or comma-separate): float32, float16, dynamic, int8. "
            "Default: all.",
        ),
    ] = None,
    calib: Annotated[
        str | None,
        typer.Option(
            "--calib",
            help="Calibration images for full int8: an image folder (class subfolders allowed; "
            "100-500 images sampled evenly), or 'synthetic'.",
        ),
    ] = None,
    verify: Annotated[
        Path | None,
        typer.Option(
            "--verify",
            help="Labelled image folder (Left/, Right/) to verify every artifact against its "
            "Keras source. Default: the calibration folder.",
        ),
    ] = None,
    int8_io: Annotated[
        Int8IO,
        typer.Option(
            "--int8-io",
            help="Input/output type of the full-int8 model: int8 (default: no QUANTIZE ops at "
            "the edges, so the whole graph is one XNNPACK partition), uint8 or float.",
        ),
    ] = Int8IO.int8,
    target: Annotated[
        Target | None,
        typer.Option(
            "--target",
            help="Convert so that every artifact loads in this interpreter: tflite-runtime-2.14.",
        ),
    ] = None,
    max_flip_rate: Annotated[
        float | None,
        typer.Option(
            "--max-flip-rate",
            help="Exit non-zero when an artifact's label disagrees with Keras on more than this "
            "share of the verification images (the artifact is still written, marked failed).",
        ),
    ] = None,
    names: Annotated[
        list[str] | None,
        typer.Option(
            "--name", help="Model name for each MODEL, in order (default: the file name)."
        ),
    ] = None,
    unsafe: Annotated[
        bool,
        typer.Option(
            "--unsafe",
            help="Allow Lambda layers (their code runs on load): trusted files only.",
        ),
    ] = False,
    custom_objects: Annotated[
        Path | None,
        typer.Option(
            "--custom-objects",
            help="Python file that defines (and may register) the models' custom layers; it is "
            "imported, so its code runs: trusted files only.",
        ),
    ] = None,
    output_index: Annotated[
        int | None,
        typer.Option("--output-index", help="Which output of a multi-output model to convert."),
    ] = None,
    runtime_python: Annotated[
        list[Path] | None,
        typer.Option(
            "--runtime-python",
            help="Another Python (e.g. a venv with tflite-runtime 2.14) in which to try loading "
            "each artifact; also read from $HEMIFACE_TFLITE_RUNTIME_PYTHON.",
        ),
    ] = None,
    fuse: Annotated[
        bool,
        typer.Option(
            "--fuse/--no-fuse",
            help="Also write a fused artifact per format for models whose leading layers are "
            "bit-identical (a fine-tuned sibling of a frozen backbone): the shared trunk once.",
        ),
    ] = True,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Worker processes converting and verifying artifacts side by side. Default: "
            "from the machine (its cores, and its free memory at about 2 GB a worker); "
            "models under a million parameters in all convert in this process.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    sign_key: Annotated[
        Path | None,
        typer.Option(
            "--sign-key",
            help="EC private key (PEM): sign the published set (SET/model.sig, OpenSSF "
            "model-signing format; needs hemiface[signing]).",
        ),
    ] = None,
    sign_password_env: Annotated[
        str | None,
        typer.Option(
            "--sign-password-env", help="Environment variable holding --sign-key's password."
        ),
    ] = None,
) -> None:
    """Convert Keras models to TFLite (float32, float16, dynamic, int8), verify each against
    its source, check which interpreters load it, and write the model set's manifest."""
    from hemiface.convert.publish import refuse_if_busy

    # Said before any work: a second convert into a folder another one is writing, a
    # signing key that cannot be used.
    refuse_if_busy(out)
    password = None
    if sign_key is not None:
        from hemiface.convert.signing import key_password

        _check_sign_key(sign_key)
        password = key_password(sign_password_env)
    require_tensorflow("convert")
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from hemiface.convert.pipeline import ConvertSettings, convert_models
    from hemiface.convert.render import summary_table
    from hemiface.kerasio import quiet_tensorflow

    quiet_tensorflow()
    settings = ConvertSettings(
        formats=tuple(_parse_formats(formats)),
        calib=calib,
        verify=verify,
        int8_io=int8_io.value,
        target=target.value if target is not None else None,
        max_flip_rate=max_flip_rate,
        unsafe=unsafe,
        names=tuple(names) if names else None,
        output_index=output_index,
        runtime_python=tuple(runtime_python) if runtime_python else None,
        custom_objects=custom_objects,
        fuse=fuse,
        jobs=jobs,
    )
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

        summary = convert_models(models, out, settings, progress=progress)
    summary.notes.extend(_sign_after_publish(out, sign_key, summary.failed, password))
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        stdout = Console()
        # Piped output has no width: use one wide enough for the table instead of 80.
        stdout = stdout if stdout.is_terminal else Console(width=140)
        stdout.print(summary_table(summary))
        for note in summary.notes:
            stdout.print(f"note: {note}", highlight=False, markup=False)
        if summary.timing is not None:
            stdout.print(f"time: {summary.timing.describe()}", highlight=False, markup=False)
        stdout.print(f"manifest: {summary.manifest}", highlight=False, markup=False)
    if summary.failed:
        # One line each, never wrapped, so that a log or a script sees every failure whole.
        lines = list(summary.load_failures)
        lines += [f"{row.file}: {problem}" for row in summary.rows for problem in row.problems]
        for line in lines:
            console.print(f"[bold red]failed:[/] {escape(line)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _check_sign_key(key: Path) -> None:
    from hemiface.runtime.signing import require_library

    if not key.is_file():
        raise HemifaceError(f"{key}: --sign-key names no readable file")
    require_library()


def _sign_after_publish(
    out: Path, sign_key: Path | None, failed: bool, password: str | None = None
) -> list[str]:
    """Sign the published set (under its lock, after the publish: never half a set), or
    say when an earlier signature no longer covers what this convert published."""
    from hemiface.convert.signing import sign_published_set
    from hemiface.runtime.signing import SIGNATURE_NAME, signature_status

    if sign_key is not None and not failed:
        signature, note = sign_published_set(out, sign_key, password)
        return [n for n in (note, f"signed the set with {sign_key}: {signature}") if n]
    if sign_key is not None:
        return [f"not signed: the convert failed, so {out} was not signed with {sign_key}"]
    status = signature_status(out)
    if status.state == "does not cover the set":
        return [
            f"{out / SIGNATURE_NAME} no longer covers the set ({status.detail}); devices "
            "given a trusted key will refuse it until it is signed again"
        ]
    return []


def register(app: typer.Typer) -> None:
    app.command("convert")(convert)
