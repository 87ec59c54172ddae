"""The `hemiface` command line: one Typer app; each package registers its own commands.

Every command module exposes `register(app)`. Modules that need TensorFlow import it
inside the command body, never at module level, so `hemiface --help` and the Pi commands
start fast and work without it. `main` turns a HemifaceError into one line on stderr and
a non-zero exit, and any other exception into one line too (HEMIFACE_DEBUG=1 shows the
traceback).
"""

from __future__ import annotations

import importlib
import json
import os
import sys

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hemiface.runtime.errors import HemifaceError

NOTICE = "Research and teaching tool, not a medical device: never use it to diagnose."
COMMAND_MODULES = (
    "hemiface.synth.cli",
    "hemiface.train.cli",
    "hemiface.convert.cli",
    "hemiface.runtime.cli",
    "hemiface.explain.cli",
    "hemiface.benchmarks.cli",
    "hemiface.demo",
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
) -> None:
    """Versions, interpreter backends, CPU and whether the Haar face cascade is available."""
    from hemiface.runtime.sysinfo import collect_info

    facts = collect_info()
    if as_json:
        print(json.dumps(facts, indent=2))
        return
    table = Table(title="hemiface info", show_header=False)
    for key, value in facts.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items()) or "none installed"
        table.add_row(key, escape("not installed" if value is None else str(value)))
    Console().print(table)


def _register_commands() -> None:
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A package still being built has no cli module yet; anything else is a bug.
            if exc.name and module_name.startswith(exc.name):
                continue
            raise
        module.register(app)


_register_commands()


def main() -> None:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        app()
    except HemifaceError as exc:
        # One line a problem: an error about several files (say, convert) has one each.
        for line in str(exc).splitlines() or [""]:
            err.print(f"[bold red]error:[/] {escape(line)}", markup=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if os.environ.get("HEMIFACE_DEBUG"):
            raise
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} "
            "(set HEMIFACE_DEBUG=1 for the traceback)"
        )
        sys.exit(3)
