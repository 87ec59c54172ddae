"""The latency section: one subprocess per (model, engine, threads) row.

Each row runs `python -m hemiface.benchmarks.worker` so that peak RSS, import costs and
cold start are that row's own. A row that fails (a corrupt artifact, a Keras file that
will not load, a timeout) is recorded with status "failed" and the run goes on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hemiface.benchmarks.sections import (
    LatencyRow,
    MachineRow,
    SpeedupOverFloat32,
    SpeedupOverPredict,
)
from hemiface.benchmarks.stats import ratio, summarize_ms
from hemiface.kerasio import QUIET_TF_ENV
from hemiface.runtime.manifest import Manifest

KERAS_ENGINES = ("keras_predict", "keras_call")
ENGINES = (*KERAS_ENGINES, "tflite")
THREAD_CHOICES = (1, 2, 4)

Progress = Callable[[str], None]


@dataclass
class TimingSettings:
    warmup: int = 10
    n: int = 100
    min_time_s: float = 2.0
    max_time_s: float = 60.0
    threads: list[int] = field(default_factory=lambda: list(THREAD_CHOICES))
    timeout_s: float = 900.0
    shared_process: bool = False  # every latency row in one worker process (see run_latency)


def thread_counts(requested: list[int], cores: int) -> list[int]:
    """The requested thread counts capped at the core count, each once, ascending."""
    return sorted({max(1, min(t, cores)) for t in requested})


def engine_label(engine: str, fmt: str | None) -> str:
    return f"tflite:{fmt}" if engine == "tflite" else engine


@dataclass
class RowChoice:
    """Which rows the latency section times, and on which interpreter."""

    models: list[str]
    formats: list[str]
    engines: list[str]
    backend: str | None = None


def plan_rows(
    manifest: Manifest,
    model_set: Path,
    sources: dict[str, Path | None],
    choice: RowChoice,
    settings: TimingSettings,
    image: Path | None,
    loading: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Worker specs, model by model: Keras engines first, then each TFLite format.
    `loading` holds the Keras loader's options (unsafe, custom_objects) for Keras rows."""
    timing: dict[str, Any] = {
        "warmup": settings.warmup,
        "n": settings.n,
        "min_time_s": settings.min_time_s,
    }
    timing |= {"max_time_s": settings.max_time_s, "image": str(image) if image else None}
    specs: list[dict[str, Any]] = []
    for name in choice.models:
        entries = [e for e in manifest.models if e.name == name]
        source, prep = sources.get(name), entries[0].preprocessing
        keras = {"keras_path": str(source) if source else None, "format": None, **(loading or {})}
        keras |= {"scale": prep.scale, "offset": prep.offset}
        tflite = {"engine": "tflite", "model_set": str(model_set), "backend": choice.backend}
        for threads in settings.threads:
            row = {**timing, "model": name, "threads": threads}
            engines = [e for e in KERAS_ENGINES if e in choice.engines]
            specs += [{**row, **keras, "engine": engine} for engine in engines]
            if "tflite" in choice.engines:
                specs += [
                    {**row, **tflite, "format": e.format, "file_size_bytes": e.size_bytes}
                    for e in entries
                    if e.format in choice.formats
                ]
    return specs


def run_worker(spec: dict[str, Any], timeout_s: float, env: dict[str, str] | None = None) -> dict:
    """Run one spec in a new process; the worker's JSON, or {"ok": False, "error": ...}."""
    child_env = {**os.environ, **QUIET_TF_ENV, **(env or {})}
    spawned_at = time.time()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "hemiface.benchmarks.worker", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=child_env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout_s:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        tail = [line for line in done.stderr.strip().splitlines() if line.strip()]
        reason = tail[-1][:300] if tail else f"exit code {done.returncode}, no output"
        return {"ok": False, "error": f"worker crashed: {reason}"}
    if result.get("ok") and "first_prediction_at" in result:
        result["cold_start_s"] = result["first_prediction_at"] - spawned_at
    return result


_FIGURES = (
    *("import_s", "init_s", "preprocess_s", "first_inference_s", "cold_start_s"),
    *("peak_rss_mb", "rss_ready_mb", "macs", "p", "delegate_partitions", "undelegated_ops"),
)
# A row timed in a shared process: these figures are the process's, not the row's own.
_OWN_PROCESS_FIGURES = ("import_s", "cold_start_s", "peak_rss_mb", "rss_ready_mb")


def _source_size(spec: dict[str, Any]) -> int | None:
    if spec["engine"] == "tflite" or not spec.get("keras_path"):
        return spec.get("file_size_bytes")
    path = Path(spec["keras_path"])
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def row_from_result(
    spec: dict[str, Any], result: dict[str, Any], titles: dict[str, str], shared: bool = False
) -> LatencyRow:
    """A results.json row: identity, status and figures (None where not measured)."""
    ok = bool(result.get("ok"))
    samples = result.get("samples_ms") or []
    summary = summarize_ms(samples).to_json() if ok and samples else {}
    figures = {key: result.get(key) for key in _FIGURES}
    if shared:
        figures.update(dict.fromkeys(_OWN_PROCESS_FIGURES))
    median = summary.get("median_ms")
    return LatencyRow(
        model=spec["model"],
        title=titles.get(spec["model"], spec["model"]),
        engine=spec["engine"],
        format=spec.get("format"),
        engine_label=engine_label(spec["engine"], spec.get("format")),
        threads=spec["threads"],
        status="ok" if ok else "failed",
        error=None if ok else result.get("error", "unknown error"),
        backend=result.get("backend"),
        file_size_bytes=_source_size(spec),
        **{key: summary.get(key) for key in _SUMMARY},
        **figures,
        gmacs_per_s=figures["macs"] / (median * 1e6) if figures["macs"] and median else None,
        samples_ms=[round(s, 4) for s in samples],
    )


_SUMMARY = ("n", "median_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "max_ms")


def run_latency(
    specs: list[dict[str, Any]],
    settings: TimingSettings,
    titles: dict[str, str],
    progress: Progress | None = None,
) -> list[LatencyRow]:
    """Each row in its own process; with `settings.shared_process`, all rows in one (the
    demo's profile: one TensorFlow import instead of one a Keras row)."""
    missing = "no Keras source found for {model}"
    runnable = [s for s in specs if s["engine"] not in KERAS_ENGINES or s.get("keras_path")]
    runnable_ids = {id(s) for s in runnable}
    results: dict[int, dict[str, Any]] = {}
    if settings.shared_process and runnable:
        if progress:
            progress(f"latency: {len(runnable)} rows in one process")
        batch = run_worker({"engine": "batch", "specs": runnable}, settings.timeout_s)
        answers = batch.get("results") or [batch] * len(runnable)
        results = {id(s): r for s, r in zip(runnable, answers, strict=True)}
    rows = []
    for spec in specs:
        if not settings.shared_process and progress:
            label = engine_label(spec["engine"], spec.get("format"))
            progress(f"{titles.get(spec['model'], spec['model'])} {label} t{spec['threads']}")
        if id(spec) not in runnable_ids:
            result = {"ok": False, "error": missing.format(model=spec["model"])}
        else:
            result = results.get(id(spec)) or run_worker(spec, settings.timeout_s)
        rows.append(row_from_result(spec, result, titles, settings.shared_process))
    return rows


def measure_machine(settings: TimingSettings, progress: Progress | None = None) -> list[MachineRow]:
    """Float32 GEMM throughput per thread count: how fast this machine multiplies."""
    rows = []
    for threads in settings.threads:
        if progress:
            progress(f"machine float32 matmul t{threads}")
        spec = {"engine": "machine", "n": 10, "min_time_s": 1.0, "max_time_s": 5.0}
        env = {name: str(threads) for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
        result = run_worker({**spec, "threads": threads}, settings.timeout_s, env)
        ok = bool(result.get("ok"))
        best = min(result["samples_ms"]) if ok else None
        rows.append(
            MachineRow(
                threads=threads,
                status="ok" if ok else "failed",
                error=None if ok else result.get("error"),
                gmacs_per_s=result["macs"] / (best * 1e6) if ok and best else None,
            )
        )
    return rows


def add_machine_fraction(rows: list[LatencyRow], machine: list[MachineRow]) -> None:
    """Each row's achieved GMAC/s as a share of the float32 GEMM rate at its threads.

    More threads can only add capacity, so the yardstick at t threads is the best rate
    measured at t or fewer (on a loaded machine a 2-thread GEMM can measure slower)."""
    measured = {m.threads: m.gmacs_per_s for m in machine if m.gmacs_per_s}
    peak = {t: max(v for u, v in measured.items() if u <= t) for t in measured}
    for row in rows:
        row.fraction_of_machine = ratio(row.gmacs_per_s, peak.get(row.threads))


def latency_ratios(
    rows: list[LatencyRow],
) -> tuple[list[SpeedupOverPredict], list[SpeedupOverFloat32]]:
    """Ratios of medians within this run: speed-up over model.predict, and of each TFLite
    format over float32 (>1 means faster than the reference)."""
    ok = [r for r in rows if r.status == "ok" and r.median_ms]
    by_key = {(r.model, r.threads, r.engine_label): r.median_ms for r in ok}
    over_predict, over_float32 = [], []
    for row in ok:
        assert row.median_ms  # kept by `ok`
        base = by_key.get((row.model, row.threads, "keras_predict"))
        if base and row.engine_label != "keras_predict":
            speedup = base / row.median_ms
            over_predict.append(
                SpeedupOverPredict(row.model, row.threads, row.engine_label, speedup)
            )
        float32 = by_key.get((row.model, row.threads, "tflite:float32"))
        if float32 and row.engine == "tflite" and row.format and row.format != "float32":
            speedup = float32 / row.median_ms
            over_float32.append(SpeedupOverFloat32(row.model, row.threads, row.format, speedup))
    return over_predict, over_float32
