"""`hemiface bench` as a library: plan the rows, run the sections, assemble results.json.

Sections: latency (which also yields memory, cold start, file size and MACs, one
subprocess a row), agreement (one process, needs TensorFlow for the Keras sources) and
pipeline (frames per second of the live loop on a 640x480 video).
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.benchmarks import latency as lat
from hemiface.benchmarks.delegation import delegation_section
from hemiface.benchmarks.headline import headline
from hemiface.benchmarks.inputs import (
    LabelledImage,
    keras_sources,
    labelled_images,
    open_model_set,
)
from hemiface.benchmarks.rows import (
    LatencyRow,
    MachineRow,
    SpeedupOverFloat32,
    SpeedupOverPredict,
    make_all,
)
from hemiface.benchmarks.schema import RESULTS_SCHEMA_VERSION
from hemiface.benchmarks.sections import (
    AgreementSection,
    BenchResults,
    BenchSettings,
    DelegationSection,
    LatencySection,
    ModelRecord,
    PipelineSection,
    SetSection,
)
from hemiface.benchmarks.selection import Selection, parse_only
from hemiface.benchmarks.set_latency import run_set_section
from hemiface.core.checksum import sha256_file
from hemiface.core.errors import HemifaceError
from hemiface.runtime.backends import physical_cores
from hemiface.runtime.fused import choose_fused
from hemiface.runtime.images import write_image
from hemiface.runtime.manifest import Manifest

Step = Callable[[str], None]


@dataclass
class BenchConfig:
    tflite_dir: Path
    out_dir: Path
    keras_dir: Path | None = None
    data_dir: Path | None = None
    only: list[str] = field(default_factory=list)
    timing: lat.TimingSettings = field(default_factory=lat.TimingSettings)
    agreement_limit: int | None = None
    pipeline_frames: int = 150
    video: Path | None = None
    backend: str | None = None
    quick: bool = False
    unsafe: bool = False  # Lambda layers allowed in the Keras sources (trusted files only)
    custom_objects: Path | None = None  # trusted Python file of the sources' custom layers
    command: str = ""
    argv: list[str] = field(default_factory=list)


def quick_timing(threads: list[int]) -> lat.TimingSettings:
    """A short run: few iterations, one thread count, short timeouts."""
    return lat.TimingSettings(
        warmup=2, n=10, min_time_s=0.0, max_time_s=10.0, threads=threads[:1], timeout_s=300.0
    )


def _benchmark_image(images: list[LabelledImage], folder: Path) -> Path:
    """A real image file for the latency rows' cold start (read + preprocess + predict)."""
    if images:
        return images[0].path
    rng = np.random.default_rng(0)
    path = folder / "bench_input.jpg"
    write_image(path, rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    return path


def _str_or_none(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _sha256_of(path: Path | None) -> str | None:
    """The Keras source's sha256 (files only), so a reader can tell which model was run."""
    return sha256_file(path) if path is not None and path.is_file() else None


def _machine_facts() -> dict[str, Any]:
    from hemiface.runtime.sysinfo import collect_info

    facts = collect_info()
    facts["load_average"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    facts["cpu_flags"] = cpu_flags()
    return facts


# The instruction sets that decide int8 against float32 speed (x86: VNNI does int8 dot
# products in one instruction; Arm: the dot-product extension "asimddp").
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "asimd", "asimddp", "i8mm")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """Which of SPEED_FLAGS the CPU has (empty where /proc/cpuinfo cannot be read)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return []
    found: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            found.update(value.split())
    return [flag for flag in SPEED_FLAGS if flag in found]


def plan_total(config: BenchConfig, manifest: Manifest, selection: Selection) -> int:
    """How many steps the progress bar has (latency rows, machine rows, agreement variants,
    pipeline formats)."""
    total = 0
    if "latency" in selection.sections:
        per_model = sum(1 for e in lat.KERAS_ENGINES if e in selection.engines)
        for name in selection.models:
            formats = [f for f in manifest.formats_of(name) if f in selection.formats]
            per_threads = per_model + (len(formats) if "tflite" in selection.engines else 0)
            total += per_threads * len(config.timing.threads)
        total += len(config.timing.threads)
    if "agreement" in selection.sections and config.data_dir:
        for name in selection.models:
            total += 1 + sum(1 for f in manifest.formats_of(name) if f in selection.formats)
    if "set" in selection.sections:
        total += 1
    if "pipeline" in selection.sections:
        from hemiface.benchmarks.pipeline_fps import variants

        total += len(selection.formats) * len(variants(config.quick))
    return total


def run_bench(
    config: BenchConfig, step: Step | None = None, total: Callable[[int], None] | None = None
) -> BenchResults:
    """Run the chosen sections; every figure in one record (`to_json()` is results.json)."""
    started = time.time()
    manifest = open_model_set(config.tflite_dir)
    selection = parse_only(config.only, manifest)
    keras_skipped = _without_keras_rows(config, selection)
    config.timing.threads = lat.thread_counts(config.timing.threads, physical_cores())
    if total:
        total(plan_total(config, manifest, selection))
    sources = keras_sources(manifest, config.keras_dir)
    titles = {e.name: e.title for e in manifest.models}
    positive = manifest.models[0].positive_label
    images: list[LabelledImage] = []
    if config.data_dir:
        images = labelled_images(
            config.data_dir, manifest.models[0].labels, positive, config.agreement_limit
        )
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    machine = _machine_facts()
    settings = BenchSettings(
        sections=selection.sections,
        models=selection.models,
        formats=selection.formats,
        engines=selection.engines,
        threads=config.timing.threads,
        warmup=config.timing.warmup,
        n=config.timing.n,
        min_time_s=config.timing.min_time_s,
        max_time_s=config.timing.max_time_s,
        quick=config.quick,
        tflite_dir=str(config.tflite_dir),
        keras_dir=str(config.keras_dir) if config.keras_dir else None,
        data_dir=str(config.data_dir) if config.data_dir else None,
        n_images=len(images),
        backend=config.backend,
    )
    models = [
        ModelRecord(
            name=name,
            title=titles[name],
            formats=manifest.formats_of(name),
            keras_source=str(sources[name]) if sources.get(name) else None,
            keras_sha256=_sha256_of(sources.get(name)),
            tflite_sha256={e.format: e.sha256 for e in manifest.models if e.name == name},
        )
        for name in selection.models
    ]
    with tempfile.TemporaryDirectory(prefix="hemiface-bench-") as work:
        image = _benchmark_image(images, Path(work))
        latency = _latency_section(config, manifest, selection, sources, titles, image, step)
        if keras_skipped:
            latency.skipped = [keras_skipped]
        delegation = delegation_section(
            manifest, config.tflite_dir, selection.models, selection.formats, config.backend
        )
        set_section = _set_section(config, manifest, selection, image, step)
        pipeline = _pipeline_section(
            config, selection, step, Path(work), images[0].path if images else None
        )
    agreement = _agreement_section(config, manifest, selection, sources, images, step)
    results = BenchResults(
        schema_version=RESULTS_SCHEMA_VERSION,
        command=config.command,
        argv=config.argv,
        created_utc=created,
        machine=machine,
        settings=settings,
        models=models,
        latency=latency,
        delegation=DelegationSection.from_json(delegation),
        set=set_section,
        pipeline=pipeline,
        agreement=agreement,
    )
    results.headline = headline(results)
    results.duration_s = time.time() - started
    results.machine["load_average_end"] = (
        list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    )
    return results


def _without_keras_rows(config: BenchConfig, selection: Selection) -> str | None:
    """Without a Keras folder there is nothing to time on the Keras engines: those rows are
    skipped (said so in the results), not failed. Asking for them alone is an error."""
    if config.keras_dir is not None or "latency" not in selection.sections:
        return None
    keras_engines = [e for e in selection.engines if e in lat.KERAS_ENGINES]
    if not keras_engines:
        return None
    selection.engines = [e for e in selection.engines if e not in lat.KERAS_ENGINES]
    if not selection.engines:
        raise HemifaceError(
            "--only chose Keras engines only, but no --keras folder of Keras sources was given"
        )
    return "Keras rows (model.predict, model(x)): no --keras folder of Keras sources given"


def _latency_section(
    config: BenchConfig,
    manifest: Manifest,
    selection: Selection,
    sources: dict[str, Path | None],
    titles: dict[str, str],
    image: Path,
    step: Step | None,
) -> LatencySection:
    if "latency" not in selection.sections:
        return LatencySection("skipped", reason="not chosen with --only")
    specs = lat.plan_rows(
        manifest,
        config.tflite_dir,
        sources,
        selection.models,
        selection.formats,
        selection.engines,
        config.timing,
        image,
        config.backend,
        loading={"unsafe": config.unsafe, "custom_objects": _str_or_none(config.custom_objects)},
    )
    machine = lat.measure_machine(config.timing, step)
    rows = lat.run_latency(specs, config.timing, titles, step)
    lat.add_machine_fraction(rows, machine)
    ratios = lat.latency_ratios(rows)
    return LatencySection(
        "ok",
        rows=make_all(LatencyRow, rows, "latency.rows"),
        machine_reference=make_all(MachineRow, machine, "latency.machine_reference"),
        speedup_over_predict=make_all(
            SpeedupOverPredict, ratios["speedup_over_predict"], "latency.speedup_over_predict"
        ),
        speedup_over_float32=make_all(
            SpeedupOverFloat32, ratios["speedup_over_float32"], "latency.speedup_over_float32"
        ),
    )


def _set_section(
    config: BenchConfig,
    manifest: Manifest,
    selection: Selection,
    image: Path,
    step: Step | None,
) -> SetSection:
    if "set" not in selection.sections:
        return SetSection("skipped", reason="not chosen with --only")
    formats = [
        f for f in selection.formats if all(f in manifest.formats_of(m) for m in selection.models)
    ]
    fused_formats = [f for f in formats if choose_fused(manifest, selection.models, f)]
    section = run_set_section(
        config.tflite_dir,
        selection.models,
        formats,
        fused_formats,
        config.timing.threads,
        image,
        max(config.timing.n, 21),
        max(config.timing.max_time_s, 30.0),
        config.backend,
        config.timing.timeout_s,
        step,
    )
    return SetSection.from_json(section)


def _agreement_section(
    config: BenchConfig,
    manifest: Manifest,
    selection: Selection,
    sources: dict[str, Path | None],
    images: list[LabelledImage],
    step: Step | None,
) -> AgreementSection:
    if "agreement" not in selection.sections:
        return AgreementSection("skipped", reason="not chosen with --only")
    if not images:
        return AgreementSection("skipped", reason="no labelled folder (--data)")
    from hemiface.benchmarks.agreement import run_agreement

    # The Keras sources are the reference for agreement whatever --only says of engines.
    use_keras = config.keras_dir is not None
    try:
        figures = run_agreement(
            manifest,
            config.tflite_dir,
            sources,
            images,
            selection.models,
            selection.formats,
            use_keras,
            step,
            unsafe=config.unsafe,
            custom_objects=config.custom_objects,
        )
    except HemifaceError as exc:
        return AgreementSection("failed", reason=str(exc))
    return AgreementSection.from_json({"status": "ok", "data_dir": str(config.data_dir), **figures})


def _pipeline_section(
    config: BenchConfig,
    selection: Selection,
    step: Step | None,
    work: Path,
    fallback_image: Path | None,
) -> PipelineSection:
    if "pipeline" not in selection.sections:
        return PipelineSection("skipped", reason="not chosen with --only")
    from hemiface.benchmarks.pipeline_fps import run_pipeline_section

    section = run_pipeline_section(
        config.tflite_dir,
        selection.models,
        selection.formats,
        config.pipeline_frames,
        step,
        work,
        config.video,
        fallback_image,
        config.timing.timeout_s,
        config.quick,
    )
    return PipelineSection.from_json(section)


def command_line(argv: list[str]) -> str:
    return "hemiface " + " ".join(shlex.quote(a) for a in argv)
