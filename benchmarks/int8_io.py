"""Full int8 with int8 against uint8 input/output: agreement with Keras and speed.

    python -m hemiface.benchmarks.int8_io MODEL... --calib DIR --verify DIR --out FOLDER

Converts every model to full int8 twice (`hemiface convert --int8-io int8` and
`--int8-io uint8`, verification included), then times the two artifacts of each model in
one process, round-robin, at 1 thread: bare `invoke()` and the runtime's whole prediction
from a 224x224 image (uint8 pixels are fed as they are; int8 ones with the top bit
flipped). Writes int8_io.json and int8_io.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.benchmarks.stats import time_round_robin
from hemiface.runtime.manifest import atomic_write_bytes, load_manifest

IO_TYPES = ("int8", "uint8")
ROUNDS = 15
RUNS_PER_ROUND = 10


def convert_both(models: list[Path], calib: Path, verify: Path, work: Path) -> dict[str, Path]:
    from hemiface.convert.pipeline import ConvertSettings, convert_models

    sets = {}
    for io in IO_TYPES:
        sets[io] = work / f"set-{io}"
        convert_models(
            models,
            sets[io],
            ConvertSettings(formats=("int8",), calib=calib, verify=verify, int8_io=io, fuse=False),
        )
    return sets


def time_both(sets: dict[str, Path]) -> list[dict[str, Any]]:
    """Per model and I/O type: medians of bare invokes and whole predictions (ms)."""
    from hemiface.runtime.delegation import delegation_report
    from hemiface.runtime.modelset import load_model_set

    loaded = {io: load_model_set(folder, "int8", num_threads=1) for io, folder in sets.items()}
    names = loaded[IO_TYPES[0]].names
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
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
        interpreter = model_set.classifiers[0].interpreter
        report = delegation_report(interpreter)
        rows.append(
            {
                "model": name,
                "title": entry.title,
                "io": io,
                "bare_ms": statistics.median(bare[io, name]),
                "whole_ms": statistics.median(whole[io, name]),
                "pixels": model_set.pixel_inputs[0],
                "partitions": report.partitions if report else None,
                "undelegated_ops": report.undelegated_ops if report else None,
                "agreement": v.agreement if v else None,
                "max_abs_dp": v.max_abs_dp if v else None,
                "n_images": v.n_images if v else None,
            }
        )
    return rows


def render(rows: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    out = [
        "# Full int8: int8 against uint8 input/output",
        "",
        f"Machine: {machine.get('cpu_model')}, CPU flags {', '.join(machine['cpu_flags'])}; "
        f"1 interpreter thread; {ROUNDS} rounds of {RUNS_PER_ROUND} runs, round-robin; medians.",
        "",
        "| model | I/O | bare invoke ms | whole prediction ms | int8/uint8 (whole) | "
        "partitions | outside | agreement with Keras | max \\|Δp\\| |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    by = {(r["model"], r["io"]): r for r in rows}
    for r in rows:
        other = by.get((r["model"], "uint8"))
        speed = f"{r['whole_ms'] / other['whole_ms']:.2f}x" if other and r["io"] == "int8" else ""
        out.append(
            f"| {r['title']} | {r['io']} | {r['bare_ms']:.2f} | {r['whole_ms']:.2f} | {speed} | "
            f"{r['partitions']} | {', '.join(r['undelegated_ops'] or []) or 'none'} | "
            f"{r['agreement']:.1%} of {r['n_images']} | {r['max_abs_dp']:.4f} |"
        )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hemiface.benchmarks.int8_io")
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--calib", type=Path, required=True)
    parser.add_argument("--verify", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from hemiface.benchmarks.bench import _machine_facts

    with tempfile.TemporaryDirectory(prefix="hemiface-int8-io-") as work:
        sets = convert_both(args.models, args.calib, args.verify, Path(work))
        rows = time_both(sets)
    machine = _machine_facts()
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine, "rounds": ROUNDS, "runs_per_round": RUNS_PER_ROUND}
    payload["rows"] = rows
    atomic_write_bytes(args.out / "int8_io.json", (json.dumps(payload, indent=1) + "\n").encode())
    atomic_write_bytes(args.out / "int8_io.md", render(rows, machine).encode())
    for path in ("int8_io.json", "int8_io.md"):
        (args.out / path).chmod(0o644)
    sys.stdout.write(render(rows, machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
