"""`hemiface convert` on the command line: JSON summary, exit codes, one-line errors, quiet."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hemiface.cli import app
from hemiface.core.errors import HemifaceError

HEMIFACE = [sys.executable, "-m", "hemiface"]


def test_json_summary_in_process(models_dir: Path, tmp_path: Path):
    result = CliRunner().invoke(
        app,
        [
            "convert",
            str(models_dir / "tiny.keras"),
            "--out",
            str(tmp_path),
            "--formats",
            "float32,float16",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [row["format"] for row in data["rows"]] == ["float32", "float16"]
    assert data["rows"][0]["size_mb"] > 0 and data["failed"] is False
    assert (tmp_path / "hemiface.json").exists()


def test_table_and_int8_options(models_dir: Path, images_dir: Path, tmp_path: Path):
    result = CliRunner().invoke(
        app,
        [
            "convert",
            str(models_dir / "tiny.keras"),
            "-o",
            str(tmp_path),
            "-f",
            "int8",
            "--calib",
            str(images_dir),
            "--int8-io",
            "int8",
            "--name",
            "cnn_stroke_model",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "CNN" in result.stdout and "int8" in result.stdout
    from hemiface.runtime.manifest import load_manifest

    entry = load_manifest(tmp_path).entry("cnn_stroke_model", "int8")
    assert entry.input.dtype == "int8" and entry.output.quantization.zero_point == -128


def test_library_errors_reach_the_cli_as_hemiface_errors(tmp_path: Path):
    result = CliRunner().invoke(app, ["convert", str(tmp_path / "x.h5"), "--out", str(tmp_path)])
    assert isinstance(result.exception, HemifaceError)


def test_missing_model_is_one_line_and_non_zero(tmp_path: Path):
    done = subprocess.run(
        [
            *HEMIFACE,
            "convert",
            str(tmp_path / "missing.h5"),
            "--out",
            str(tmp_path / "o"),
            "-f",
            "float32",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error:") and "no such file" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_real_run_is_quiet_and_exits_non_zero_over_the_flip_rate(images_dir, tmp_path):
    """No TensorFlow log lines on the terminal; --max-flip-rate failure gives exit code 1."""
    code = (
        "import keras, numpy as np\n"
        "i = keras.Input((32, 32, 3)); x = keras.layers.GlobalAveragePooling2D()(i)\n"
        "d = keras.layers.Dense(1, activation='sigmoid'); m = keras.Model(i, d(x))\n"
        "d.set_weights([np.full((3, 1), 0.004, 'float32'), np.array([-0.004], 'float32')])\n"
        f"m.save({str(tmp_path / 'edge.h5')!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    env = {**os.environ}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command itself must keep TF quiet
    done = subprocess.run(
        [
            *HEMIFACE,
            "convert",
            str(tmp_path / "edge.h5"),
            "--out",
            str(tmp_path / "o"),
            "--formats",
            "float32,int8",
            "--calib",
            str(images_dir),
            "--max-flip-rate",
            "0",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert [row["passed"] for row in data["rows"]] == [True, False]
    lines = done.stderr.strip().splitlines()
    assert lines and all(line.startswith("failed:") for line in lines), repr(done.stderr)


@pytest.fixture(scope="session")
def tflite_runtime_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python 3.11 venv with tflite-runtime 2.14.0 and numpy<2, made in the session's
    temporary folder (or reused from $HEMIFACE_TEST_TFL214_VENV, a folder of your choosing,
    when that is set: made there once, then kept)."""
    chosen = os.environ.get("HEMIFACE_TEST_TFL214_VENV")
    venv = Path(chosen) if chosen else tmp_path_factory.mktemp("tfl214") / "venv"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import tflite_runtime.interpreter"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    base = shutil.which("python3.11")
    if base is None:
        pytest.skip("no python3.11 here: tflite-runtime 2.14 has wheels for Python <= 3.11 only")
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
    pip = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "-q",
            "tflite-runtime==2.14.0",
            "numpy<2",
        ],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0:
        last = (pip.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"tflite-runtime 2.14.0 wheel not installable on this platform: {last}")
    return python


@pytest.mark.slow
def test_target_214_artifacts_load_in_real_tflite_runtime_2_14(
    models_dir, images_dir, tmp_path, tflite_runtime_python
):
    python = tflite_runtime_python
    from hemiface.convert.pipeline import ConvertSettings, convert_models

    plain = convert_models(
        [models_dir / "tiny.keras"],
        tmp_path / "plain",
        ConvertSettings(calib=images_dir, runtime_python=[python]),
    )
    loads = {row.format: row.loads_in["tflite-runtime 2.14.0"] for row in plain.rows}
    assert loads["float32"] == loads["float16"] == loads["int8"] == "ok"
    assert "FULLY_CONNECTED" in loads["dynamic"] and "12" in loads["dynamic"]

    summary = convert_models(
        [models_dir / "tiny.keras"],
        tmp_path / "t214",
        ConvertSettings(calib=images_dir, target="tflite-runtime-2.14", runtime_python=[python]),
    )
    assert not summary.failed
    for row in summary.rows:
        assert row.loads_in["tflite-runtime 2.14.0"] == "ok", row.format
        assert any(k.startswith("ai-edge-litert") and v == "ok" for k, v in row.loads_in.items())
    from hemiface.runtime.manifest import load_manifest

    entry = load_manifest(tmp_path / "t214").entry("tiny", "dynamic")
    assert entry.loads_in["tflite-runtime 2.14.0"] == "ok"


@pytest.mark.slow
def test_a_fresh_process_produces_byte_identical_artifacts(
    model_set, models_dir, images_dir, tmp_path
):
    """Determinism across processes (object-name counters, hashes, metadata), not just calls."""
    _, first = model_set
    done = subprocess.run(
        [
            *HEMIFACE,
            "convert",
            str(models_dir / "tiny.keras"),
            "--out",
            str(tmp_path),
            "--calib",
            str(images_dir),
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    for row in json.loads(done.stdout)["rows"]:
        assert (tmp_path / row["file"]).read_bytes() == (first / row["file"]).read_bytes()


def test_choices_are_the_converters_names_and_a_bad_one_is_one_line(tmp_path: Path):
    from hemiface.convert import compat
    from hemiface.convert.cli import Int8IO, Target
    from hemiface.convert.tflite_convert import INT8_IO

    assert tuple(choice.value for choice in Int8IO) == INT8_IO
    assert tuple(choice.value for choice in Target) == tuple(compat.TARGETS)
    for option, value in (("--int8-io", "int4"), ("--target", "tflite-runtime-1.0")):
        done = subprocess.run(
            [*HEMIFACE, "convert", str(tmp_path / "m.h5"), "--out", str(tmp_path / "o"),
             option, value],
            capture_output=True,
            text=True,
        )  # fmt: skip
        assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
        assert done.stderr.startswith("error:") and f"'{option}'" in done.stderr
        assert not (tmp_path / "o").exists()
