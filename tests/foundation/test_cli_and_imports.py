from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from hemiface.cli import app


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_runtime_import_leaves_tensorflow_out() -> None:
    code = (
        "import sys, hemiface.runtime, hemiface.runtime.manifest, hemiface.runtime.backends, "
        "hemiface.runtime.images, hemiface.runtime.preprocess, hemiface.runtime.classifier, "
        "hemiface.runtime.sysinfo\n"
        "from hemiface.runtime.backends import resolve_backend\n"
        "resolve_backend()\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'tf_keras', 'matplotlib') "
        "if m in sys.modules]\n"
        "print(heavy)"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_cli_import_leaves_tensorflow_out() -> None:
    result = run_python(
        "import sys, hemiface.cli\n"
        "print([m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules])"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "info" in result.output
    assert "not a medical device" in result.output


def test_info_json() -> None:
    result = CliRunner().invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    assert facts["python"].count(".") == 2
    assert "ai-edge-litert" in facts["interpreter_backends"]
    assert facts["physical_cores"] >= 1
    assert facts["haar_cascade"] and facts["haar_cascade"].endswith(".xml")


def test_info_table() -> None:
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0
    assert "haar_cascade" in result.output


def test_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hemiface", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "Usage" in result.stdout


def test_missing_tensorflow_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from hemiface.runtime import errors

    real = importlib.util.find_spec
    monkeypatch.setattr(
        errors.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorflow" else real(name, *a),
    )
    with pytest.raises(errors.MissingExtraError) as info:
        errors.require_tensorflow("convert")
    assert str(info.value).count("\n") == 0
    assert "pip install 'hemiface[workstation]'" in str(info.value)


def test_error_message_with_brackets_is_printed_verbatim(tmp_path) -> None:
    """Rich markup must not eat "[workstation]" out of an install hint."""
    code = (
        "import sys; sys.argv = ['hemiface', 'info']\n"
        "from hemiface import cli\n"
        "from hemiface.runtime.errors import MissingExtraError\n"
        "def boom(*a, **k):\n"
        "    raise MissingExtraError(\"pip install 'hemiface[workstation]'\")\n"
        "cli.app = boom\n"
        "cli.main()\n"
    )
    result = run_python(code)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: pip install 'hemiface[workstation]'"


BROKEN_INSTALL = """
import sys
class Breaker:
    def find_spec(self, name, path=None, target=None):
        if name == "hemiface.train.cli":
            raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")
        if name == "hemiface.synth.cli":
            raise ModuleNotFoundError("No module named 'some_wheel'", name="some_wheel.core")
        return None
sys.meta_path.insert(0, Breaker())
sys.argv = ["hemiface", *{args!r}]
from hemiface.cli import main
main()
"""


def test_a_command_module_that_fails_to_import_says_so() -> None:
    """A broken install does not lose commands silently: one line a failed module, naming
    the module and the package it misses, and a non-zero exit."""
    result = run_python(BROKEN_INSTALL.format(args=["train", "DATA", "--out", "models"]))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in result.stderr
    assert lines[0] == (
        "error: the commands of hemiface.synth.cli are unavailable: it needs 'some_wheel.core', "
        "which is not installed (install some_wheel or reinstall hemiface)"
    )
    assert lines[1] == (
        "error: the commands of hemiface.train.cli are unavailable: it needs 'tensorflow', "
        "which is not installed (pip install 'hemiface[workstation]')"
    )


def test_the_other_commands_still_work_and_help_lists_the_failed_modules() -> None:
    result = run_python(BROKEN_INSTALL.format(args=["info", "--json"]))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["physical_cores"] >= 1
    result = run_python(BROKEN_INSTALL.format(args=["--help"]))
    assert result.returncode == 0, result.stderr
    assert "failed to import: hemiface.synth.cli, hemiface.train.cli" in " ".join(
        result.stdout.split()
    )
    assert " train " not in result.stdout and " convert " in result.stdout


def test_every_command_module_imports() -> None:
    from hemiface import cli

    assert cli.IMPORT_PROBLEMS == []


def test_an_aborted_command_is_one_line() -> None:
    code = (
        "import sys, typer; sys.argv = ['hemiface', 'info']\n"
        "from hemiface import cli\n"
        "def abort(*a, **k):\n"
        "    raise typer.Abort()\n"
        "cli.app = abort\n"
        "cli.main()\n"
    )
    result = run_python(code)
    assert result.returncode == 1
    assert result.stderr.strip() == "Aborted!"


def test_ctrl_c_inside_a_command_exits_130() -> None:
    """click (without standalone mode) turns a KeyboardInterrupt into Abort; Typer 0.29's
    own copy returns 130 instead, which main() passes on as it is."""
    code = (
        "import sys, typer; sys.argv = ['hemiface', 'info']\n"
        "from hemiface import cli\n"
        "def interrupted(*a, **k):\n"
        "    try:\n"
        "        raise KeyboardInterrupt\n"
        "    except KeyboardInterrupt:\n"
        "        raise typer.Abort() from None\n"
        "cli.app = interrupted\n"
        "cli.main()\n"
    )
    result = run_python(code)
    assert result.returncode == 130
    assert result.stderr.strip() == "interrupted"
