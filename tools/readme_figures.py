"""Rewrite the README's recorded figures from the recorded results files, never by hand.

    python tools/readme_figures.py [--check] [--readme README.md] [--results benchmarks/results]

Every figure the README quotes from a recorded run stands between two markers,
`<!-- figures:NAME -->` and `<!-- /figures:NAME -->`, and NAME is one of FIGURES below: a
function that renders that text from benchmarks/results/results.json (the bench run, with
its machine and date) and, for the two studies recorded apart when results.json does not
hold them, face_detection.json (the results.json of a `--only detectors` run) and
int8_io.json (read as the bench's `int8_io` section). `--check` changes nothing and exits
1 when a block differs from what the files give (a hand edit, or results not yet carried
over).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hemiface.benchmarks.detector_records import DetectorsSection, FaceFinds
from hemiface.benchmarks.detector_report import SEARCH, SHORT, size_label, tone_label
from hemiface.benchmarks.report import table
from hemiface.benchmarks.sections import BenchResults, Int8IOSection, SetRow
from hemiface.runtime.manifest import atomic_write_bytes

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- figures:([\w-]+) -->)(.*?)(<!-- /figures:\2 -->)", re.DOTALL)


@dataclass
class Recorded:
    """The recorded runs the figures come from."""

    bench: BenchResults
    detectors: DetectorsSection
    int8_io: Int8IOSection


def load_recorded(folder: Path) -> Recorded:
    bench = BenchResults.from_json(json.loads((folder / "results.json").read_text()))
    detectors, int8_io = bench.detectors, bench.int8_io
    if detectors is None:  # recorded by its own run, `--only detectors`: the same record
        study = folder / "face_detection.json"
        apart = BenchResults.from_json(json.loads(study.read_text()))
        if apart.detectors is None:
            raise ValueError(f"{study}: no detectors section")
        detectors = apart.detectors
    if int8_io is None:
        legacy = json.loads((folder / "int8_io.json").read_text())
        kept = {k: v for k, v in legacy.items() if k != "machine"}
        int8_io = Int8IOSection.from_json({"status": "ok", **kept}, "int8_io")
    return Recorded(bench, detectors, int8_io)


def _set_row(recorded: Recorded, fmt: str, fused: bool) -> SetRow:
    key = (fmt, fused, "sequential", 1)
    return next(
        r for r in recorded.bench.set.rows if (r.format, r.fused, r.concurrency, r.threads) == key
    )


def bench_run(recorded: Recorded) -> str:
    """When and where the bench run was made."""
    machine = recorded.bench.machine
    start, end = machine.get("load_average") or [None], machine.get("load_average_end") or [None]
    return (
        f"one run on {recorded.bench.created_utc[:10]}, {machine.get('logical_cpus')} vCPUs "
        f"{machine.get('cpu_model')}, CPU flags {', '.join(machine.get('cpu_flags') or [])}, "
        f"load average {start[0]:.1f} at the start and {end[0]:.1f} at the end"
    )


def set_fused_float32(recorded: Recorded) -> str:
    fused, separate = _set_row(recorded, "float32", True), _set_row(recorded, "float32", False)
    return (
        f"{fused.vs_reference:.2f}x the time of the three separate float32 artifacts at 1 "
        f"thread ({fused.toolkit.median_ms:.1f} against {separate.toolkit.median_ms:.1f} ms)"
    )


def set_fused_int8(recorded: Recorded) -> str:
    fused = _set_row(recorded, "int8", True)
    return f"{fused.vs_reference:.2f}x ({fused.toolkit.median_ms:.1f} ms)"


def toolkit_overhead(recorded: Recorded) -> str:
    rows = recorded.bench.set.rows
    overheads = [r.overhead_pct for r in rows if r.overhead_pct is not None]
    separate, fused = _set_row(recorded, "float32", False), _set_row(recorded, "float32", True)
    return (
        f"{min(overheads):.1f}-{max(overheads):.1f} % over bare `invoke()` calls "
        f"({separate.overhead_pct:.1f} % for the separate float32 set, "
        f"{fused.overhead_pct:.1f} % for the fused float32 one"
    )


def int8_io_ratios(recorded: Recorded) -> str:
    whole = {(r.model, r.io): r.whole_ms for r in recorded.int8_io.rows}
    ratios = {m: whole[m, "int8"] / whole[m, "uint8"] for m, io in whole if io == "int8"}
    others = [v for m, v in ratios.items() if m != "cnn_stroke_model"]
    return (
        f"{ratios['cnn_stroke_model']:.2f}x the time of uint8 I/O for the CNN and "
        f"{min(others):.2f}-{max(others):.2f}x for the MobileNetV2 models"
    )


def live_loop_float32(recorded: Recorded) -> str:
    rows = {r.variant: r for r in recorded.bench.pipeline.rows if r.format == "float32"}
    before, auto = rows["before"], rows["auto"]
    return (
        f"{before.fps:.1f} FPS (each model's own artifact, one after the other) to "
        f"{auto.fps:.1f} FPS"
    )


def _finds(recorded: Recorded) -> FaceFinds:
    finds = recorded.detectors.finds
    if finds is None:
        raise ValueError("the detector study recorded no faces found")
    return finds


def _percent(rate: float) -> str:
    return f"{rate * 100:.0f} %"


def _indented_table(header: list[str], rows: list[list[str]]) -> str:
    lines = table(header, rows)
    return "\n" + "\n".join("  " + line for line in lines[:-1]) + "\n  "


def detectors_by_skin_tone(recorded: Recorded) -> str:
    rows = [
        [tone_label(b), _percent(b.rate["haar"]), _percent(b.rate[SEARCH])]
        for b in _finds(recorded).skin_tone_bands
    ]
    return _indented_table(["skin luminance (0-255)", "Haar cascade", "BlazeFace"], rows)


def detectors_by_size(recorded: Recorded) -> str:
    rows = [
        [
            size_label(b.height_low, b.height_high),
            _percent(b.rate["haar"]),
            _percent(b.rate[SHORT]),
            _percent(b.rate[SEARCH]),
        ]
        for b in _finds(recorded).size_bands
    ]
    header = ["face-box height (px)", "Haar cascade", "BlazeFace short range alone", "BlazeFace"]
    return _indented_table(header, rows)


def detector_times(recorded: Recorded) -> str:
    section = recorded.detectors
    timing, false_hits = section.timing or {}, section.false_detections or {}
    free = section.face_free_timing or {}
    found = false_hits[SEARCH]
    width, height = section.frame_size or [0, 0]
    return (
        f"gave {found} false detection{'' if found == 1 else 's'} on {section.face_free_frames} "
        f"face-free synthetic scenes (Haar {false_hits['haar']}) and took "
        f"{timing[SEARCH].median_ms:.1f} ms a {width}x{height} frame with a face "
        f"({free[SEARCH].median_ms:.1f} ms a face-free one, where every step runs) against "
        f"Haar's {timing['haar'].median_ms:.1f} ms"
    )


def detector_time_ratio(recorded: Recorded) -> str:
    return f"{recorded.detectors.time_ratio_blazeface_to_haar:.2f}"


def detector_face_stage(recorded: Recorded) -> str:
    live = recorded.detectors.live_loop
    assert live is not None, "the detector study recorded no live loop"
    haar, blazeface = live.detectors["haar"], live.detectors[SEARCH]
    return f"{haar.face_ms:.1f} against {blazeface.face_ms:.1f} ms"


FIGURES: dict[str, Callable[[Recorded], str]] = {
    "bench-run": bench_run,
    "set-fused-float32": set_fused_float32,
    "set-fused-int8": set_fused_int8,
    "toolkit-overhead": toolkit_overhead,
    "int8-io": int8_io_ratios,
    "live-loop-float32": live_loop_float32,
    "detectors-by-skin-tone": detectors_by_skin_tone,
    "detectors-by-size": detectors_by_size,
    "detector-times": detector_times,
    "detector-time-ratio": detector_time_ratio,
    "detector-face-stage": detector_face_stage,
}


class FiguresError(ValueError):
    """A marked block names no known figure."""


def rewrite(readme: str, recorded: Recorded) -> str:
    """The README with every marked block's text rendered from the recorded files."""

    def render(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in FIGURES:
            raise FiguresError(
                f"README block figures:{name}: no such figure ({', '.join(FIGURES)})"
            )
        return match.group(1) + FIGURES[name](recorded) + match.group(4)

    return BLOCK.sub(render, readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--check", action="store_true", help="Change nothing; exit 1 on a difference."
    )
    args = parser.parse_args(argv)
    try:
        old = args.readme.read_text(encoding="utf-8")
        new = rewrite(old, load_recorded(args.results))
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        sys.stderr.write(f"readme_figures: {type(exc).__name__}: {exc}\n")
        return 2
    if new == old:
        return 0
    if args.check:
        sys.stderr.write(
            f"{args.readme}: figures differ from {args.results}; run tools/readme_figures.py\n"
        )
        return 1
    mode = args.readme.stat().st_mode & 0o777
    atomic_write_bytes(args.readme, new.encode("utf-8"))
    args.readme.chmod(mode)  # the temporary file was private; the README keeps its mode
    return 0


if __name__ == "__main__":
    sys.exit(main())
