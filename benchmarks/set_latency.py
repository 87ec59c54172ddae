"""The set section: one prediction of the whole model set, every way the runtime can run it.

For each format, the set runs separate (one artifact a model) or fused (a shared trunk
once, when the set has a fused artifact that passed), with its interpreters one after the
other ("sequential") or at once ("threads"), at each thread count. All configurations are
opened in one worker process and timed round-robin, a few runs each per round, so that
the machine's load weighs on all of them alike and the ratios between them hold.

Each configuration gets two timings: the toolkit's `ModelSet.probabilities` on the
benchmark image (resize, input tensors, invokes, dequantized outputs) and the bare
`invoke()` calls of the same interpreters; their difference is the toolkit's overhead.
The reference for the ratios is the separate float32 artifacts, sequential, 1 thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.benchmarks.sections import SetRow, SetSection
from hemiface.benchmarks.stats import ratio, summarize_ms, time_round_robin

Step = Callable[[str], None]
ROUNDS = 7
REFERENCE = ("float32", False, "sequential", 1)  # format, fused, concurrency, threads


def plan_configs(
    formats: list[str], fused_formats: list[str], threads: list[int]
) -> list[tuple[str, bool, str, int]]:
    """(format, fused, concurrency, threads) for every configuration to time."""
    configs = []
    for fmt in formats:
        for fused in (False, True) if fmt in fused_formats else (False,):
            for concurrency in ("sequential", "threads"):
                for t in threads:
                    configs.append((fmt, fused, concurrency, t))
    return configs


def run_set_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """In the worker: open every configuration, time them round-robin, summarise."""
    from hemiface.runtime.images import read_image
    from hemiface.runtime.modelset import load_model_set
    from hemiface.runtime.preprocess import resize_for_model

    folder = Path(spec["model_set"])
    rgb = read_image(Path(spec["image"])) if spec.get("image") else None
    configs = [tuple(c) for c in spec["configs"]]
    sets = {}
    for fmt, fused, concurrency, threads in configs:
        sets[(fmt, fused, concurrency, threads)] = load_model_set(
            folder,
            fmt,
            only=spec.get("models"),
            backend=spec.get("backend"),
            num_threads=threads,
            fuse=fused,
            concurrency=concurrency,
        )
    first = next(iter(sets.values())).entries[0].preprocessing
    if rgb is None:
        rgb = np.full((first.height, first.width, 3), 128, np.uint8)
    # One input of the model's size (224x224): the timings hold no resize of a big image.
    rgb = np.ascontiguousarray(resize_for_model(rgb, replace(first, color_order="RGB")))
    toolkit, bare = time_round_robin(
        sets,
        rgb,
        ROUNDS,
        per_round=max(1, spec.get("n", 20) // ROUNDS),
        warmup=max(1, spec.get("warmup", 3)),
        max_time_s=spec.get("max_time_s", 120.0),
    )
    rows = []
    for key, model_set in sets.items():
        fmt, fused, concurrency, threads = key
        rows.append(
            {
                "format": fmt,
                "fused": fused,
                "concurrency": concurrency,
                "threads": threads,
                "interpreters": model_set.interpreters,
                "layout": model_set.describe(),
                "p": [round(p, 6) for p in model_set.probabilities(rgb)],
                "toolkit": summarize_ms(toolkit[key]).to_json(),
                "bare": summarize_ms(bare[key]).to_json(),
            }
        )
        model_set.close()
    return {"rows": rows, "first_prediction_at": time.time()}


def set_ratios(rows: list[SetRow]) -> None:
    """Add to each row its toolkit overhead and its ratio to the reference configuration."""
    reference = next((r for r in rows if set_key(r) == REFERENCE), None)
    for row in rows:
        toolkit, bare = row.toolkit.median_ms, row.bare.median_ms
        row.overhead_pct = (toolkit / bare - 1.0) * 100.0 if bare else None
        row.vs_reference = ratio(toolkit, reference.toolkit.median_ms if reference else None)
        row.bare_vs_reference = ratio(bare, reference.bare.median_ms if reference else None)


def set_key(row: SetRow) -> tuple[str, bool, str, int]:
    return (row.format, row.fused, row.concurrency, row.threads)


@dataclass
class SetPlan:
    """What the set section times: which formats (fused where the set can), at which
    thread counts, on which image, for how long."""

    model_set: Path
    models: list[str]
    formats: list[str]
    fused_formats: list[str]
    threads: list[int]
    image: Path | None
    n: int
    max_time_s: float
    backend: str | None
    timeout_s: float


def run_set_section(plan: SetPlan, step: Step | None = None) -> SetSection:
    from hemiface.benchmarks.latency import run_worker

    if step:
        step("set: every model at once, fused vs separate, sequential vs threads")
    spec = {
        "engine": "set",
        "model_set": str(plan.model_set),
        "models": plan.models,
        "configs": plan_configs(plan.formats, plan.fused_formats, sorted({1, *plan.threads})),
        "image": str(plan.image) if plan.image else None,
        "n": plan.n,
        "warmup": 3,
        "max_time_s": plan.max_time_s,
        "backend": plan.backend,
    }
    result = run_worker(spec, plan.timeout_s)
    if not result.get("ok"):
        return SetSection("failed", reason=result.get("error", "unknown error"))
    rows = [SetRow.from_json(row, f"set.rows[{i}]") for i, row in enumerate(result["rows"])]
    set_ratios(rows)
    return SetSection(
        "ok",
        reference="separate float32 artifacts, one after the other, 1 thread",
        rounds=ROUNDS,
        rows=rows,
        peak_rss_mb=result.get("peak_rss_mb"),
    )
