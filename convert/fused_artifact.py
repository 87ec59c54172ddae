"""Fused artifacts in `hemiface convert`: per shared trunk and format, convert (or reuse),
read ops and delegate partitions, and verify each output against its own Keras source.

Gates, each one making the artifact fail (it is still written, and the runtime ignores it):
- every output passes the same verification as a separate artifact (--max-flip-rate);
- float32 is exact: each output within `FLOAT32_EXACT` of the model's separate float32
  artifact on the verification images (or on probe images when there are none);
- under --target, the target's op-version limits.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.convert import compat
from hemiface.convert.artifact import ModelWork, _reusable_content, tensor_spec
from hemiface.convert.fuse import (
    SharedTrunk,
    build_fused_model,
    export_fused,
    find_shared_trunks,
)
from hemiface.convert.summary import ConversionRow
from hemiface.convert.tflite_convert import STATIC_BATCH, convert_to_tflite
from hemiface.convert.verify import artifact_probabilities, compare_with_source
from hemiface.core.quiet import quiet_fds
from hemiface.runtime.delegation import delegation_report
from hemiface.runtime.fused import FusedRunner
from hemiface.runtime.manifest import (
    FusedEntry,
    FusedOutput,
    Manifest,
    ModelEntry,
    SourceModel,
)

FLOAT32_EXACT = 1e-5  # max |p(fused) - p(separate)| allowed for float32
PROBE_IMAGES = 8  # random inputs for the exactness check when no images were given


def fused_name(trunk: SharedTrunk) -> str:
    return "+".join(trunk.names)


class FusedWork:
    """One shared trunk: the fused Keras model and its SavedModel, made once."""

    def __init__(self, trunk: SharedTrunk, works: list[ModelWork], workdir: Path) -> None:
        self.trunk = trunk
        self.works = works  # one per model of the trunk, in the trunk's order
        self.workdir = workdir
        self.name = fused_name(trunk)
        self._saved_model: Path | None = None

    def saved_model(self) -> Path:
        if self._saved_model is None:
            model = build_fused_model(self.trunk)
            folder = self.workdir / f"savedmodel-fused-{len(self.trunk.models)}-{id(self)}"
            self._saved_model = export_fused(model, folder, self.trunk.models[0].input_shape)
        return self._saved_model

    def key(self, fmt: str, int8_io: str, target: str | None) -> str:
        first = self.works[0]
        parts = ["fused", *(w.model.sha256 for w in self.works), fmt]
        parts += [first.versions.tensorflow, first.versions.hemiface, str(self.trunk.layers)]
        parts += [f"target={target}", f"batch={STATIC_BATCH}"]
        if fmt == "int8":
            calib = first.calib_set
            parts += [f"io={int8_io}", calib.fingerprint() if calib else ""]
        return "|".join(parts)


def output_positions(interpreter: Any, names: list[str]) -> list[int]:
    """Where each model's output sits among the interpreter's outputs, read from the
    serving signature (its outputs are named after the models)."""
    runner = interpreter.get_signature_runner()
    named = runner.get_output_details()
    order = [d["index"] for d in interpreter.get_output_details()]
    del runner
    missing = [n for n in names if n not in named]
    if missing:
        raise ValueError(f"the fused artifact has no output named {', '.join(missing)}")
    return [order.index(named[n]["index"]) for n in names]


def fused_artifact(
    work: FusedWork,
    fmt: str,
    separate: dict[str, ModelEntry],
    out: Path,
    staging: Path,
    previous: Manifest | None,
    cache: dict[str, dict[str, str]],
    int8_io: str,
    target: str | None,
    max_flip_rate: float | None,
) -> tuple[FusedEntry, list[ConversionRow]]:
    """The fused artifact of one format: its manifest entry and one summary row per model."""
    # The name in the staging folder and the cache's key; publishing may give the file
    # another name (the manifest says which), so a reused artifact keeps its own.
    file = plain = f"{work.name}.{fmt}.tflite"
    key = work.key(fmt, int8_io, target)
    first = work.works[0]
    olds = previous.fused if previous else []
    prev = next((f for f in olds if f.name == work.name and f.format == fmt), None)
    cached = cache.get(plain, {})
    content = _reusable_content(out, prev, cached, key)
    reused = content is not None
    if reused and prev is not None:
        file = prev.file
    seconds = 0.0
    if content is None:
        start = time.perf_counter()
        representative = first.calib_set.tensors if first.calib_set is not None else None
        content = convert_to_tflite(work.saved_model(), fmt, representative, int8_io, target)
        seconds = time.perf_counter() - start
        (staging / file).write_bytes(content)
    sha = hashlib.sha256(content).hexdigest()
    report = compat.analyze_ops(content)
    with quiet_fds():
        interpreter = first.backend.make_interpreter(content, 1)
    positions = output_positions(interpreter, work.trunk.names)
    details = interpreter.get_output_details()
    delegation = delegation_report(interpreter)
    entry = FusedEntry(
        name=work.name,
        format=fmt,
        file=file,
        sha256=sha,
        size_bytes=len(content),
        input=tensor_spec(interpreter.get_input_details()[0]),
        outputs=[
            FusedOutput(
                model=w.model.name,
                index=position,
                output=tensor_spec(details[position]),
                source=SourceModel(w.model.path.name, w.model.sha256, w.model.source_format),
            )
            for w, position in zip(work.works, positions, strict=True)
        ],
        preprocessing=first.spec,
        trunk_layers=work.trunk.layers,
        trunk_last_layer=work.trunk.last_shared,
        trunk_params=work.trunk.shared_params,
        converter=first.versions,
        ops=report.ops,
        min_runtime=compat.describe_min_runtime(report),
        loads_in=compat.load_in_process(content),
        calibration=first.calib_set.description if fmt == "int8" and first.calib_set else None,
        delegate_partitions=delegation.partitions if delegation else None,
        undelegated_ops=delegation.undelegated_ops if delegation else [],
    )
    verify_key = first.verify_key(max_flip_rate)
    if reused and prev is not None and cached.get("verify") == verify_key:
        entry.verification = prev.verification
        entry.max_abs_dp_vs_separate = prev.max_abs_dp_vs_separate
    else:
        _verify(work, entry, content, fmt, separate, max_flip_rate)
    cache[plain] = {"key": key, "sha256": sha, "verify": verify_key}
    problems = _problems(entry, fmt, report, target, max_flip_rate)
    entry.passed = not problems
    rows = [
        ConversionRow(
            name=w.model.name,
            title=f"{separate[w.model.name].title} (fused)",
            format=fmt,
            file=file,
            sha256=sha,
            size_bytes=len(content),
            source_bytes=sum(x.source_bytes for x in work.works),
            seconds=round(seconds, 3),
            reused=reused,
            min_runtime=entry.min_runtime,
            loads_in=entry.loads_in,
            verification=entry.verification.get(w.model.name),
            passed=not problems,
            problems=problems,
        )
        for w in work.works
    ]
    return entry, rows


def _verify(
    work: FusedWork,
    entry: FusedEntry,
    content: bytes,
    fmt: str,
    separate: dict[str, ModelEntry],
    max_flip_rate: float | None,
) -> None:
    """Each output against its Keras source, and against the model's separate artifact."""
    first = work.works[0]
    verify_set = first.verify_set
    tensors = verify_set.tensors if verify_set is not None else _probe_tensors(first)
    fused_p, latency = fused_probabilities(content, entry, separate, tensors, first)
    for index, model_work in enumerate(work.works):
        name = model_work.model.name
        separate_p = model_work.artifact_p.get(fmt)
        if separate_p is None or len(separate_p) != len(tensors):
            separate_p, _ = artifact_probabilities(
                model_work.contents[fmt], separate[name], tensors, first.backend
            )
        entry.max_abs_dp_vs_separate[name] = float(np.max(np.abs(fused_p[:, index] - separate_p)))
        if verify_set is None:
            continue
        own = separate[name]
        entry.verification[name] = compare_with_source(
            model_work.source_probabilities(),
            fused_p[:, index],
            own.threshold,
            verify_set.labels,
            verify_set.description,
            latency,
            positive_index=own.labels.index(own.positive_label),
            max_flip_rate=max_flip_rate,
        )


def fused_probabilities(
    content: bytes,
    entry: FusedEntry,
    separate: dict[str, ModelEntry],
    tensors: np.ndarray,
    work: ModelWork,
) -> tuple[np.ndarray, float]:
    """(images x models) probabilities through the runtime's own FusedRunner, and the
    median latency of one invoke (ms)."""
    with quiet_fds():
        interpreter = work.backend.make_interpreter(content, 1)
    runner = FusedRunner(entry, interpreter, [separate[m] for m in entry.models], 1)
    rows, latencies = [], []
    for i in range(len(tensors)):
        start = time.perf_counter()
        rows.append(runner.run(tensors[i : i + 1]))
        latencies.append((time.perf_counter() - start) * 1000.0)
    return np.array(rows, dtype=np.float64), float(np.median(latencies))


def _probe_tensors(work: ModelWork) -> np.ndarray:
    height, width = work.spec.height, work.spec.width
    rng = np.random.default_rng(0)
    return rng.random((PROBE_IMAGES, height, width, 3), dtype=np.float32)


def _problems(
    entry: FusedEntry,
    fmt: str,
    report: Any,
    target: str | None,
    max_flip_rate: float | None,
) -> list[str]:
    problems = []
    if target is not None:
        problem = compat.target_problem(report, target)
        if problem:
            problems.append(problem)
    for name, v in entry.verification.items():
        if not v.passed:
            problems.append(
                f"{name}: {v.flips} of {v.n_images} labels flipped, over --max-flip-rate "
                f"{max_flip_rate}"
            )
    if fmt == "float32":
        for name, dp in entry.max_abs_dp_vs_separate.items():
            if not dp <= FLOAT32_EXACT:  # NaN fails too
                problems.append(
                    f"{name}: the fused float32 output differs from the separate artifact by "
                    f"{dp:.2e} (more than {FLOAT32_EXACT:g})"
                )
    return problems


def merge_fused(
    previous: Manifest | None, entries: list[FusedEntry], models: list[ModelEntry]
) -> list[FusedEntry]:
    """New fused entries replace old ones of the same name and format; old ones stay only
    while every model they serve is still in the set, of the same format, from the same
    source."""
    sources = {(m.name, m.format): m.source.sha256 if m.source else "" for m in models}
    new_keys = {(e.name, e.format) for e in entries}
    kept = []
    for old in previous.fused if previous else []:
        if (old.name, old.format) in new_keys:
            continue
        if all(
            o.source is not None and sources.get((o.model, old.format)) == o.source.sha256
            for o in old.outputs
        ):
            kept.append(old)
    return kept + entries


def fuse_models(
    works: list[ModelWork],
    formats: tuple[str, ...],
    entries: list[ModelEntry],
    workdir: Path,
    out: Path,
    staging: Path,
    previous: Manifest | None,
    cache: dict[str, dict[str, str]],
    int8_io: str,
    target: str | None,
    max_flip_rate: float | None,
    notes: list[str],
) -> tuple[list[FusedEntry], list[ConversionRow]]:
    """A fused artifact per shared trunk and format (none when no models share one)."""
    by_name = {w.model.name: w for w in works}
    fused: list[FusedEntry] = []
    rows: list[ConversionRow] = []
    for trunk in find_shared_trunks([w.model for w in works]):
        members = [by_name[n] for n in trunk.names]
        if len({(w.spec.height, w.spec.width, w.spec.scale, w.spec.offset) for w in members}) != 1:
            continue  # one input tensor feeds the trunk: the preprocessing must be one
        work = FusedWork(trunk, members, workdir)
        notes.append(
            f"{' and '.join(trunk.names)} share their first {trunk.layers} layers bit for bit "
            f"(up to {trunk.last_shared}, {trunk.shared_params:,} parameters): fused as "
            f"{work.name}.*.tflite"
        )
        for fmt in formats:
            separate = {e.name: e for e in entries if e.format == fmt and e.name in by_name}
            entry, fused_rows = fused_artifact(
                work, fmt, separate, out, staging, previous, cache, int8_io, target, max_flip_rate
            )
            fused.append(entry)
            rows += fused_rows
    return fused, rows
