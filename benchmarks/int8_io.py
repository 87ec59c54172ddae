"""The int8-io section: full int8 with int8 against uint8 input/output, agreement with
Keras and speed (`hemiface bench ... --only int8-io`; needs --keras and --data).

Converts every model to full int8 twice (`hemiface convert --int8-io int8` and
`--int8-io uint8`, verification included, in a child process), then times the two
artifacts of each model in one process, round-robin, at 1 thread: bare `invoke()` and the
runtime's whole prediction from a 224x224 image (uint8 pixels are fed as they are; int8
ones with the top bit flipped).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

from hemiface.benchmarks.sections import Int8IORow, Int8IOSection
from hemiface.benchmarks.stats import time_round_robin
from hemiface.core.errors import HemifaceError, one_line
from hemiface.kerasio import QUIET_TF_ENV
from hemiface.runtime.manifest import load_manifest

IO_TYPES = ("int8", "uint8")
ROUNDS = 15
RUNS_PER_ROUND = 10


def convert_both(models: list[Path], calib: Path, verify: Path, work: Path) -> dict[str, Path]:
    """One full-int8 model set per I/O type, made by `hemiface convert` as a user would."""
    import os

    sets = {}
    for io in IO_TYPES:
        sets[io] = work / f"set-{io}"
        command = [sys.executable, "-m", "hemiface", "convert", *map(str, models)]
        command += ["--out", str(sets[io]), "--formats", "int8", "--int8-io", io, "--no-fuse"]
        command += ["--calib", str(calib), "--verify", str(verify)]
        done = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, **QUIET_TF_ENV}, check=False
        )
        if done.returncode != 0:
            tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
            raise HemifaceError(f"convert --int8-io {io} failed: {tail[0][:300]}")
    return sets


def time_both(sets: dict[str, Path]) -> list[Int8IORow]:
    """Per model and I/O type: medians of bare invokes and whole predictions (ms)."""
    from hemiface.runtime.delegation import delegation_report
    from hemiface.runtime.modelset import load_model_set

    names = load_model_set(sets[IO_TYPES[0]], "int8", num_threads=1).names
    rgb = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    single = {
        (io, name): load_model_set(sets[io], "int8", only=[name], num_threads=1)
        for io in IO_TYPES
        for name in names
    }
    whole, bare = time_round_robin(single, rgb, ROUNDS, RUNS_PER_ROUND, warmup=5)
    rows = []
    for (io, name), model_set in single.items():
        entry = load_manifest(sets[io]).entry(name, "int8")
        v = entry.verification
        report = delegation_report(model_set.classifiers[0].interpreter)
        rows.append(
            Int8IORow(
                model=name,
                title=entry.title,
                io="int8" if io == "int8" else "uint8",
                bare_ms=statistics.median(bare[io, name]),
                whole_ms=statistics.median(whole[io, name]),
                pixels=model_set.pixel_inputs[0],
                partitions=report.partitions if report else None,
                undelegated_ops=report.undelegated_ops if report else None,
                agreement=v.agreement if v else None,
                max_abs_dp=v.max_abs_dp if v else None,
                n_images=v.n_images if v else None,
            )
        )
    return rows


def int8_io_section(models: list[Path], calib: Path, verify: Path, work: Path) -> Int8IOSection:
    """The section; a failed conversion is reported as the section's reason."""
    if not models:
        return Int8IOSection("skipped", reason="no Keras sources (--keras) to convert")
    try:
        rows = time_both(convert_both(models, calib, verify, work))
    except (HemifaceError, OSError, ValueError, RuntimeError) as exc:
        return Int8IOSection("failed", reason=one_line(exc))
    return Int8IOSection("ok", rounds=ROUNDS, runs_per_round=RUNS_PER_ROUND, rows=rows)
