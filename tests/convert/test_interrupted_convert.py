"""A real `hemiface convert` process killed (SIGKILL) or interrupted (SIGINT) at several
points, including mid-publish: the model set then loads as the old set or the new one,
never refused, and the next convert cleans up what the killed one left.

The process is the real command line (`hemiface.cli.main`); to stop it at an exact point,
the test starts it with a few lines in front that wrap a library call: when the chosen
point is reached, it writes a marker file and sleeps until the signal arrives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import default_sigint

from hemiface.convert.pipeline import ConvertSettings, convert_models
from hemiface.convert.publish import JOURNAL_NAME, LOCK_NAME, STAGING_PREFIX, artifact_files
from hemiface.runtime.manifest import MANIFEST_NAME, load_manifest
from hemiface.runtime.modelset import load_model_set

FORMATS = "float32,float16"

# Runs `hemiface convert ARGS...`, pausing at POINT:
#   converting  - the first artifact is staged, the second is being converted
#   journal     - the journal is written, nothing moved into the set yet
#   mid-publish - the first new artifact is moved into the set, the manifest is the old one
#   swapped     - the new manifest is in place, the old files are not deleted yet
PAUSING_CONVERT = r"""
import os, sys, time
from pathlib import Path

point, marker = sys.argv[1], Path(sys.argv[2])

def pause():
    marker.write_text(str(os.getpid()))
    time.sleep(300)

from hemiface.convert import artifact, publish

real_convert = artifact.convert_to_tflite
calls = []

def convert_to_tflite(*args, **kwargs):
    calls.append(1)
    if point == "converting" and len(calls) == 2:
        pause()
    return real_convert(*args, **kwargs)

artifact.convert_to_tflite = convert_to_tflite
real_replace = os.replace

def replace(src, dst, *args, **kwargs):
    real_replace(src, dst, *args, **kwargs)
    src, dst = str(src), str(dst)
    if point == "journal" and dst.endswith(publish.JOURNAL_NAME):
        pause()
    if point == "mid-publish" and publish.STAGING_PREFIX in src:
        pause()
    if point == "swapped" and dst.endswith("hemiface.json"):
        pause()

os.replace = replace
sys.argv = ["hemiface", "convert", *sys.argv[3:]]
from hemiface.cli import main
main()
"""


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory, models_dir: Path):  # noqa: ANN201
    """(old model, new model, old set, new set): the same model name, other weights."""
    import keras

    folder = tmp_path_factory.mktemp("versions")
    keras.utils.set_random_seed(2)
    model = keras.models.load_model(models_dir / "tiny.keras")
    for weight in model.weights:
        weight.assign(weight.numpy() * 0.7 - 0.02)
    (folder / "new").mkdir()
    model.save(folder / "new" / "tiny.keras")
    old_model, new_model = models_dir / "tiny.keras", folder / "new" / "tiny.keras"
    sets = []
    for source, name in ((old_model, "old-set"), (new_model, "new-set")):
        summary = convert_models(
            [source], folder / name, ConvertSettings(formats=FORMATS.split(","))
        )
        sets.append({(r.name, r.format, r.sha256) for r in summary.rows})
    return old_model, new_model, sets[0], sets[1]


def _run_until(point: str, out: Path, model: Path, marker: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = [str(model), "--out", str(out), "--formats", FORMATS]
    process = subprocess.Popen(
        [sys.executable, "-c", PAUSING_CONVERT, point, str(marker), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=default_sigint,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not marker.exists():
        if process.poll() is not None:
            _, stderr = process.communicate()
            pytest.fail(f"convert ended before {point} (exit {process.returncode}): {stderr}")
        assert time.monotonic() < deadline, f"convert never reached {point}"
        time.sleep(0.05)
    return process


def _loaded_set(out: Path) -> set[tuple[str, str, str]]:
    manifest = load_manifest(out)  # every file present and matching its sha256
    for fmt in ("float32", "float16"):
        model_set = load_model_set(out, fmt)  # loads in the interpreter too
        assert len(model_set.classifiers) == 1
    return {(e.name, e.format, e.sha256) for e in manifest.models}


def _leftovers(out: Path) -> list[str]:
    return sorted(
        p.name
        for p in out.iterdir()
        if p.name.startswith((STAGING_PREFIX, ".hemiface.json.")) or p.name == JOURNAL_NAME
    )


POINTS = ["converting", "journal", "mid-publish", "swapped"]
CASES = [
    pytest.param(
        point,
        sig,
        id=f"{point}-{sig.name}",
        marks=() if (point, sig) == ("mid-publish", signal.SIGKILL) else pytest.mark.slow,
    )
    for point in POINTS
    for sig in (signal.SIGKILL, signal.SIGINT)
]


@pytest.mark.parametrize(("point", "sig"), CASES)
def test_an_interrupted_convert_leaves_the_old_set_or_the_new(
    two_versions, tmp_path: Path, point: str, sig: signal.Signals
) -> None:
    old_model, new_model, old_set, new_set = two_versions
    out = tmp_path / "set"
    convert_models([old_model], out, ConvertSettings(formats=FORMATS.split(",")))
    assert _loaded_set(out) == old_set
    process = _run_until(point, out, new_model, tmp_path / "marker")
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    if sig == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 130, stderr
        assert "Traceback" not in stderr and "error" not in stderr
        assert _leftovers(out) == []  # an orderly stop tidies up itself
        assert LOCK_NAME not in os.listdir(out)

    loaded = _loaded_set(out)
    expected = new_set if point == "swapped" else old_set
    assert loaded == expected, f"{point}: neither the set expected nor whole"

    # The next convert finishes the job and leaves exactly the new set's files.
    summary = convert_models([new_model], out, ConvertSettings(formats=FORMATS.split(",")))
    assert _loaded_set(out) == new_set
    named = artifact_files(load_manifest(out))  # the classifiers and the face detector
    assert {row.file for row in summary.rows} <= set(named)
    assert sorted(os.listdir(out)) == sorted(
        [MANIFEST_NAME, ".hemiface-convert-cache.json", *named]
    )


@pytest.mark.slow
def test_a_second_convert_into_the_same_folder_refuses_while_the_first_runs(
    two_versions, tmp_path: Path
) -> None:
    old_model, new_model, old_set, _ = two_versions
    out = tmp_path / "set"
    first = _run_until("converting", out, new_model, tmp_path / "marker")
    try:
        second = subprocess.run(
            [sys.executable, "-m", "hemiface", "convert", str(old_model), "--out", str(out),
             "--formats", "float32"],
            capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert second.returncode == 2
    last = second.stderr.strip().splitlines()[-1]  # (TensorFlow's import noise comes first)
    assert last.startswith("error: ") and "another hemiface convert (process" in last
    assert "Traceback" not in second.stderr
    assert not (out / MANIFEST_NAME).exists()  # neither wrote a set
