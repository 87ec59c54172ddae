"""`hemiface bench` as a library: plan the rows, run the sections, assemble results.json.

Sections: latency (which also yields memory, cold start, file size and MACs, one
subprocess a row), set (every configuration of the whole set in one process), delegation,
pipeline (frames per second of the live loop on a 640x480 video) and agreement (one
process, needs TensorFlow for the Keras sources); on request (`--only`) the detector
study (detectors) and the int8 input/output study (int8_io). `demo_config` is the demo's
short profile of the same questions.
"""

from __future__ import annotations

import datetime as dt
import shlex
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hemiface.benchmarks import latency as lat
from hemiface.benchmarks.agreement import KerasLoading
from hemiface.benchmarks.delegation import delegation_section
from hemiface.benchmarks.detector_records import DetectorsSection
from hemiface.benchmarks.headline import headline
from hemiface.benchmarks.inputs import (
    LabelledImage,
    keras_sources,
    labelled_images,
    labelled_root,
    open_model_set,
)
from hemiface.benchmarks.machine import load_average, machine_facts
from hemiface.benchmarks.pipeline_fps import PipelinePlan, variants
from hemiface.benchmarks.sections import (
    SCHEMA_VERSION,
    AgreementSection,
    BenchResults,
    BenchSettings,
    Int8IOSection,
    LatencySection,
    ModelRecord,
    PipelineSection,
    SetSection,
)
from hemiface.benchmarks.selection import Selection, parse_only
from hemiface.benchmarks.set_latency import SetPlan, run_set_section
from hemiface.core.checksum import sha256_file
from hemiface.core.errors import HemifaceError
from hemiface.runtime.backends import physical_cores
from hemiface.runtime.fused import choose_fused
from hemiface.runtime.images import write_image
from hemiface.runtime.manifest import Manifest

Step = Callable[[str], None]
NOT_CHOSEN = "not chosen with --only"
# The demo's profile: the same questions on fewer runs, images and frames (see demo_config).
DEMO_IMAGES = 60
DEMO_FRAMES = 30
QUICK_DETECTOR_FACES = 40


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
    profile: str | None = None  # "demo" for demo_config's runs
    detector_seed: int | None = None  # the detectors section's faces (None: its own seed)


def quick_timing(threads: list[int]) -> lat.TimingSettings:
    """A short run: few iterations, one thread count, short timeouts."""
    return lat.TimingSettings(
        warmup=2, n=10, min_time_s=0.0, max_time_s=10.0, threads=threads[:1], timeout_s=300.0
    )


def demo_config(
    tflite_dir: Path, out_dir: Path, keras_dir: Path | None, data_dir: Path | None
) -> BenchConfig:
    """The demo's profile: the speed-up over model.predict, the formats, the fused set, the
    live loop before and after, and agreement, in about a minute on two cores. Against
    --quick: model(x) is left out, every latency row runs in one process (one TensorFlow
    import; the medians are the rows' own, cold start and peak memory are not reported),
    DEMO_IMAGES images for agreement and DEMO_FRAMES video frames."""
    timing = quick_timing([1])
    timing.shared_process = True
    return BenchConfig(
        tflite_dir=tflite_dir,
        out_dir=out_dir,
        keras_dir=keras_dir,
        data_dir=data_dir,
        only=["predict", "tflite"],
        timing=timing,
        agreement_limit=DEMO_IMAGES,
        pipeline_frames=DEMO_FRAMES,
        quick=True,
        command="hemiface demo (bench stage, demo profile)",
        profile="demo",
    )


def _benchmark_image(images: list[LabelledImage], folder: Path) -> Path:
    """A real image file for the latency rows' cold start (read + preprocess + predict)."""
    if images:
        return images[0].path
    rng = np.random.default_rng(0)
    path = folder / "bench_input.jpg"
    write_image(path, rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    return path


def _sha256_of(path: Path | None) -> str | None:
    """The Keras source's sha256 (files only), so a reader can tell which model was run."""
    return sha256_file(path) if path is not None and path.is_file() else None


def plan_total(config: BenchConfig, manifest: Manifest, selection: Selection) -> int:
    """How many steps the progress bar has (latency rows, machine rows, agreement variants,
    pipeline formats, one a study)."""
    total = 0
    if "latency" in selection.sections:
        rows = 0
        per_model = sum(1 for e in lat.KERAS_ENGINES if e in selection.engines)
        for name in selection.models:
            formats = [f for f in manifest.formats_of(name) if f in selection.formats]
            rows += per_model + (len(formats) if "tflite" in selection.engines else 0)
        rows *= len(config.timing.threads)
        total += (1 if config.timing.shared_process else rows) + len(config.timing.threads)
    if "agreement" in selection.sections and config.data_dir:
        for name in selection.models:
            total += 1 + sum(1 for f in manifest.formats_of(name) if f in selection.formats)
    if "pipeline" in selection.sections:
        total += len(selection.formats) * len(variants(config.quick))
    return total + sum(1 for s in ("set", "detectors", "int8_io") if s in selection.sections)


@dataclass
class _Run:
    """What every section of one run shares."""

    config: BenchConfig
    manifest: Manifest
    selection: Selection
    sources: dict[str, Path | None]
    images: list[LabelledImage]
    step: Step | None


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
    images: list[LabelledImage] = []
    if config.data_dir:
        first = manifest.models[0]
        images = labelled_images(
            config.data_dir, first.labels, first.positive_label, config.agreement_limit
        )
    run = _Run(config, manifest, selection, keras_sources(manifest, config.keras_dir), images, step)
    results = BenchResults(
        schema_version=SCHEMA_VERSION,
        command=config.command,
        argv=config.argv,
        created_utc=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        machine=machine_facts(),
        settings=_settings(run),
        models=_model_records(run),
        latency=LatencySection("skipped", reason=NOT_CHOSEN),
    )
    with tempfile.TemporaryDirectory(prefix="hemiface-bench-") as work:
        image = _benchmark_image(images, Path(work))
        results.latency = _latency_section(run, image)
        if keras_skipped:
            results.latency.skipped = [keras_skipped]
        results.delegation = delegation_section(
            manifest, config.tflite_dir, selection.models, selection.formats, config.backend
        )
        results.set = _set_section(run, image)
        results.pipeline = _pipeline_section(run, Path(work))
        results.detectors = _detectors_section(run)
        results.int8_io = _int8_io_section(run, Path(work))
    results.agreement = _agreement_section(run)
    results.headline = headline(results)
    results.duration_s = time.time() - started
    results.machine["load_average_end"] = load_average()
    return results


def _settings(run: _Run) -> BenchSettings:
    config, selection = run.config, run.selection
    return BenchSettings(
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
        n_images=len(run.images),
        backend=config.backend,
        profile=config.profile,
    )


def _model_records(run: _Run) -> list[ModelRecord]:
    titles = {e.name: e.title for e in run.manifest.models}
    return [
        ModelRecord(
            name=name,
            title=titles[name],
            formats=run.manifest.formats_of(name),
            keras_source=str(run.sources[name]) if run.sources.get(name) else None,
            keras_sha256=_sha256_of(run.sources.get(name)),
            tflite_sha256={e.format: e.sha256 for e in run.manifest.models if e.name == name},
        )
        for name in run.selection.models
    ]


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


def _latency_section(run: _Run, image: Path) -> LatencySection:
    config, selection = run.config, run.selection
    if "latency" not in selection.sections:
        return LatencySection("skipped", reason=NOT_CHOSEN)
    specs = lat.plan_rows(
        run.manifest,
        config.tflite_dir,
        run.sources,
        lat.RowChoice(selection.models, selection.formats, selection.engines, config.backend),
        config.timing,
        image,
        loading={"unsafe": config.unsafe, "custom_objects": _str_or_none(config.custom_objects)},
    )
    machine = lat.measure_machine(config.timing, run.step)
    titles = {e.name: e.title for e in run.manifest.models}
    rows = lat.run_latency(specs, config.timing, titles, run.step)
    lat.add_machine_fraction(rows, machine)
    over_predict, over_float32 = lat.latency_ratios(rows)
    return LatencySection(
        "ok",
        rows=rows,
        machine_reference=machine,
        speedup_over_predict=over_predict,
        speedup_over_float32=over_float32,
        shared_process=True if config.timing.shared_process else None,
    )


def _str_or_none(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _set_section(run: _Run, image: Path) -> SetSection:
    config, selection, manifest = run.config, run.selection, run.manifest
    if "set" not in selection.sections:
        return SetSection("skipped", reason=NOT_CHOSEN)
    formats = [
        f for f in selection.formats if all(f in manifest.formats_of(m) for m in selection.models)
    ]
    plan = SetPlan(
        model_set=config.tflite_dir,
        models=selection.models,
        formats=formats,
        fused_formats=[f for f in formats if choose_fused(manifest, selection.models, f)],
        threads=config.timing.threads,
        image=image,
        n=max(config.timing.n, 21),
        max_time_s=max(config.timing.max_time_s, 30.0),
        backend=config.backend,
        timeout_s=config.timing.timeout_s,
    )
    return run_set_section(plan, run.step)


def _agreement_section(run: _Run) -> AgreementSection:
    config = run.config
    if "agreement" not in run.selection.sections:
        return AgreementSection("skipped", reason=NOT_CHOSEN)
    if not run.images:
        return AgreementSection("skipped", reason="no labelled folder (--data)")
    from hemiface.benchmarks.agreement import run_agreement, summarize_agreement

    # The Keras sources are the reference for agreement whatever --only says of engines.
    keras = KerasLoading(config.unsafe, config.custom_objects) if config.keras_dir else None
    try:
        found = run_agreement(
            run.manifest,
            config.tflite_dir,
            run.sources,
            run.images,
            run.selection.models,
            run.selection.formats,
            keras,
            run.step,
        )
    except HemifaceError as exc:
        return AgreementSection("failed", reason=str(exc))
    return summarize_agreement(found, str(config.data_dir))


def _pipeline_section(run: _Run, work: Path) -> PipelineSection:
    config, selection = run.config, run.selection
    if "pipeline" not in selection.sections:
        return PipelineSection("skipped", reason=NOT_CHOSEN)
    from hemiface.benchmarks.pipeline_fps import run_pipeline_section

    plan = PipelinePlan(
        model_set=config.tflite_dir,
        models=selection.models,
        formats=selection.formats,
        frames=config.pipeline_frames,
        video=config.video,
        fallback_image=run.images[0].path if run.images else None,
        timeout_s=config.timing.timeout_s,
        quick=config.quick,
    )
    return run_pipeline_section(plan, work, run.step)


def _detectors_section(run: _Run) -> DetectorsSection | None:
    """The face detectors side by side (only when named in --only)."""
    if "detectors" not in run.selection.sections:
        return None
    from hemiface.benchmarks.face_detection import (
        FACE_FREE_FRAMES,
        FACES,
        LIVE_ROUNDS,
        SEED,
        compare_detectors,
    )

    if run.step:
        run.step("detectors: Haar and BlazeFace by face size and skin tone")
    faces = QUICK_DETECTOR_FACES if run.config.quick else FACES
    face_free = QUICK_DETECTOR_FACES if run.config.quick else FACE_FREE_FRAMES
    seed = SEED if run.config.detector_seed is None else run.config.detector_seed
    rounds = 1 if run.config.quick else LIVE_ROUNDS
    return compare_detectors(faces, face_free, run.config.tflite_dir, seed, rounds)


def _int8_io_section(run: _Run, work: Path) -> Int8IOSection | None:
    """Full int8 with int8 against uint8 I/O (only when named in --only): the Keras
    sources converted twice, calibrated on the data's train/ split (else the folder)."""
    if "int8_io" not in run.selection.sections:
        return None
    from hemiface.benchmarks.int8_io import int8_io_section

    if run.step:
        run.step("int8-io: full int8 with int8 against uint8 input/output")
    data = run.config.data_dir
    if data is None:
        return Int8IOSection("skipped", reason="no labelled folder (--data)")
    calib = data / "train" if (data / "train").is_dir() else data
    verify = labelled_root(data, run.manifest.models[0].labels)
    sources = [p for name in run.selection.models if (p := run.sources.get(name))]
    return int8_io_section(sources, calib, verify, work)


def command_line(argv: list[str]) -> str:
    return "hemiface " + " ".join(shlex.quote(a) for a in argv)
