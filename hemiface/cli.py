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
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hemiface.core.domain import NOTICE
from hemiface.runtime.errors import HemifaceError

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
) -> None:
    """Versions, interpreter backends, CPU and whether the Haar face cascade is available."""
    from hemiface.runtime.sysinfo import collect_info

    facts = collect_info()
    if models is not None:
        from hemiface.runtime.device_choice import describe_choice

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
    table = Table(title="hemiface info", show_header=False)
    for key, value in facts.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items()) or "none installed"
        table.add_row(key, escape("not installed" if value is None else str(value)))
    Console().print(table)
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
