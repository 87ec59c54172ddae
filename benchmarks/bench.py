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
from hemiface.benchmarks.inputs import (
    LabelledImage,
    keras_sources,
    labelled_images,
    open_model_set,
)
from hemiface.benchmarks.report_set import set_headline
from hemiface.benchmarks.schema import RESULTS_SCHEMA_VERSION
from hemiface.benchmarks.set_latency import run_set_section
from hemiface.runtime.backends import physical_cores
from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.fused import choose_fused
from hemiface.runtime.images import write_image
from hemiface.runtime.manifest import FORMATS, Manifest, sha256_file

SECTIONS = ("latency", "set", "agreement", "pipeline")
ENGINE_ALIASES = {
    "keras": list(lat.KERAS_ENGINES),
    "predict": ["keras_predict"],
    "keras_predict": ["keras_predict"],
    "call": ["keras_call"],
    "keras_call": ["keras_call"],
    "tflite": ["tflite"],
}
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


@dataclass
class Selection:
    models: list[str]
    formats: list[str]
    engines: list[str]
    sections: list[str]


def quick_timing(threads: list[int]) -> lat.TimingSettings:
    """A short run: few iterations, one thread count, short timeouts."""
    return lat.TimingSettings(
        warmup=2, n=10, min_time_s=0.0, max_time_s=10.0, threads=threads[:1], timeout_s=300.0
    )


def parse_only(only: list[str], manifest: Manifest) -> Selection:
    """Split --only tokens into models, formats, engines and sections; each kind not
    named means all of that kind. Models may be named by name or title."""
    titles = {}
    for entry in manifest.models:
        titles.setdefault(entry.title.lower(), entry.name)
        titles.setdefault(entry.name.lower(), entry.name)
    models: list[str] = []
    formats: list[str] = []
    engines: list[str] = []
    sections: list[str] = []
    for raw in (t for item in only for t in item.split(",")):
        token = raw.strip().lower().replace("-", "_")
        if not token:
            continue
        if token in titles:
            models.append(titles[token])
        elif token in FORMATS:
            formats.append(token)
        elif token in ENGINE_ALIASES:
            engines += ENGINE_ALIASES[token]
        elif token.replace("_", "-") in SECTIONS or token in SECTIONS:
            sections.append(token)
        else:
            choices = sorted(set(titles) | set(FORMATS) | set(ENGINE_ALIASES) | set(SECTIONS))
            raise HemifaceError(
                f"--only {raw!r}: not a model, format, engine or section; "
                f"choose from {', '.join(choices)}"
            )
    present_formats = [f for f in FORMATS if any(e.format == f for e in manifest.models)]
    return Selection(
        models=list(dict.fromkeys(models)) or manifest.names(),
        formats=list(dict.fromkeys(formats)) or present_formats,
        engines=list(dict.fromkeys(engines)) or list(lat.ENGINES),
        sections=[s for s in SECTIONS if s in sections] or list(SECTIONS),
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
) -> dict[str, Any]:
    """Run the chosen sections; every figure in one dict (results.json)."""
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
    results: dict[str, Any] = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "command": config.command,
        "argv": config.argv,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine_facts(),
        "settings": {
            "sections": selection.sections,
            "models": selection.models,
            "formats": selection.formats,
            "engines": selection.engines,
            "threads": config.timing.threads,
            "warmup": config.timing.warmup,
            "n": config.timing.n,
            "min_time_s": config.timing.min_time_s,
            "max_time_s": config.timing.max_time_s,
            "quick": config.quick,
            "tflite_dir": str(config.tflite_dir),
            "keras_dir": str(config.keras_dir) if config.keras_dir else None,
            "data_dir": str(config.data_dir) if config.data_dir else None,
            "n_images": len(images),
            "backend": config.backend,
        },
        "models": [
            {
                "name": name,
                "title": titles[name],
                "formats": manifest.formats_of(name),
                "keras_source": str(sources[name]) if sources.get(name) else None,
                "keras_sha256": _sha256_of(sources.get(name)),
                "tflite_sha256": {e.format: e.sha256 for e in manifest.models if e.name == name},
            }
            for name in selection.models
        ],
    }
    with tempfile.TemporaryDirectory(prefix="hemiface-bench-") as work:
        image = _benchmark_image(images, Path(work))
        results["latency"] = _latency_section(
            config, manifest, selection, sources, titles, image, step
        )
        if keras_skipped:
            results["latency"]["skipped"] = [keras_skipped]
        results["delegation"] = delegation_section(
            manifest, config.tflite_dir, selection.models, selection.formats, config.backend
        )
        results["set"] = _set_section(config, manifest, selection, image, step)
        results["pipeline"] = _pipeline_section(
            config, selection, step, Path(work), images[0].path if images else None
        )
    results["agreement"] = _agreement_section(config, manifest, selection, sources, images, step)
    results["headline"] = headline(results)
    results["duration_s"] = time.time() - started
    results["machine"]["load_average_end"] = (
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
) -> dict[str, Any]:
    if "latency" not in selection.sections:
        return {"status": "skipped", "reason": "not chosen with --only", "rows": []}
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
    return {"status": "ok", "rows": rows, "machine_reference": machine, **lat.latency_ratios(rows)}


def _set_section(
    config: BenchConfig,
    manifest: Manifest,
    selection: Selection,
    image: Path,
    step: Step | None,
) -> dict[str, Any]:
    if "set" not in selection.sections:
        return {"status": "skipped", "reason": "not chosen with --only", "rows": []}
    formats = [
        f for f in selection.formats if all(f in manifest.formats_of(m) for m in selection.models)
    ]
    fused_formats = [f for f in formats if choose_fused(manifest, selection.models, f)]
    return run_set_section(
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


def _agreement_section(
    config: BenchConfig,
    manifest: Manifest,
    selection: Selection,
    sources: dict[str, Path | None],
    images: list[LabelledImage],
    step: Step | None,
) -> dict[str, Any]:
    if "agreement" not in selection.sections:
        return {"status": "skipped", "reason": "not chosen with --only"}
    if not images:
        return {"status": "skipped", "reason": "no labelled folder (--data)"}
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
        return {"status": "failed", "reason": str(exc)}
    return {"status": "ok", "data_dir": str(config.data_dir), **figures}


def _pipeline_section(
    config: BenchConfig,
    selection: Selection,
    step: Step | None,
    work: Path,
    fallback_image: Path | None,
) -> dict:
    if "pipeline" not in selection.sections:
        return {"status": "skipped", "reason": "not chosen with --only", "rows": []}
    from hemiface.benchmarks.pipeline_fps import run_pipeline_section

    return run_pipeline_section(
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


def headline(results: dict[str, Any]) -> list[str]:
    """The ratios the report leads with: measured in this run, medians."""
    lines: list[str] = []
    latency = results.get("latency", {})
    titles = {m["name"]: m["title"] for m in results.get("models", [])}
    threads = results["settings"]["threads"]
    for t in threads:
        for name, title in titles.items():
            parts = []
            for item in latency.get("speedup_over_predict", []):
                if item["model"] == name and item["threads"] == t:
                    parts.append(f"{item['engine_label']} {item['speedup']:.1f}x")
            fmt_parts = []
            for item in latency.get("speedup_over_float32", []):
                if item["model"] == name and item["threads"] == t:
                    fmt_parts.append(f"{item['format']} {item['speedup']:.2f}x")
            if parts:
                lines.append(
                    f"{title}, {t} thread{'s' if t > 1 else ''}: speed-up over model.predict: "
                    + ", ".join(parts)
                )
            if fmt_parts:
                lines.append(
                    f"{title}, {t} thread{'s' if t > 1 else ''}: speed-up over TFLite float32: "
                    + ", ".join(fmt_parts)
                )
    lines += _startup_lines(latency.get("rows", []), titles)
    lines += set_headline(results)
    agreement = results.get("agreement", {})
    for item in agreement.get("vs_source", []):
        lines.append(
            f"{titles.get(item['model'], item['model'])} {item['format']} vs Keras: "
            f"{item['label_agreement']:.1%} label agreement, {item['flips']} flips, "
            f"max |Δp| {item['max_abs_dp']:.4f}"
        )
    return lines


def _startup_lines(rows: list[dict[str, Any]], titles: dict[str, str]) -> list[str]:
    """Cold start and peak memory of the runtime's float32 path against model.predict."""
    lines = []
    ok = {
        (r["model"], r["engine_label"], r["threads"]): r
        for r in rows
        if r["status"] == "ok" and r["cold_start_s"]
    }
    for name, title in titles.items():
        threads = sorted({t for (m, _, t) in ok if m == name})
        if not threads:
            continue
        t = threads[-1]
        notebook = ok.get((name, "keras_predict", t))
        for fmt in ("float32", "int8"):
            runtime = ok.get((name, f"tflite:{fmt}", t))
            if notebook and runtime:
                lines.append(
                    f"{title}: cold start (new process to first prediction) "
                    f"{runtime['cold_start_s']:.2f} s with the TFLite {fmt} runtime vs "
                    f"{notebook['cold_start_s']:.2f} s with model.predict "
                    f"({notebook['cold_start_s'] / runtime['cold_start_s']:.1f}x); peak RSS "
                    f"{runtime['peak_rss_mb']:.0f} MB vs {notebook['peak_rss_mb']:.0f} MB"
                )
    return lines


def command_line(argv: list[str]) -> str:
    return "hemiface " + " ".join(shlex.quote(a) for a in argv)
