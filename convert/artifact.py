"""One artifact, from SavedModel to manifest entry: the single path every artifact takes.

An artifact answers for one model or, fused, for several (the shared trunk once, one
output per model); either way `make_artifact` converts it (or reuses an intact earlier
file), reads its ops, loads it once in this process's interpreter (tensor specs, XNNPACK
partitions, the output of each model) and runs it on the check images through the
runtime's own classifier, so what is measured is what the device computes. It runs in a
worker process of `convert.jobs` or in the calling process: everything it needs travels
in the picklable `ArtifactJob`, the images as .npy files read memory-mapped.

The comparison with the Keras source happens in the caller (`convert.pipeline`), which
computes the Keras probabilities once per model while the workers convert.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.convert import compat
from hemiface.convert.tflite_convert import convert_to_tflite
from hemiface.core.quiet import quiet_fds
from hemiface.runtime.backends import Backend, resolve_backend
from hemiface.runtime.classifier import TFLiteClassifier
from hemiface.runtime.delegation import delegation_report
from hemiface.runtime.fused import FusedRunner
from hemiface.runtime.manifest import (
    ConverterInfo,
    FusedEntry,
    FusedOutput,
    LoadCheck,
    ModelEntry,
    Preprocessing,
    Quantization,
    SourceModel,
    TensorSpec,
)

# The steps whose time convert reports, in the order they run.
STEPS = ("convert", "ops", "load", "load_elsewhere", "run")


@dataclass(frozen=True)
class OutputSource:
    """One output of an artifact: the model it answers for."""

    model: str
    title: str
    source: SourceModel


@dataclass(frozen=True)
class Trunk:
    """What a fused artifact shares: its first `layers` layers, up to `last_layer`."""

    layers: int
    last_layer: str
    params: int


@dataclass(frozen=True)
class ArtifactJob:
    """Everything one artifact needs, picklable for a worker process."""

    name: str  # the model's name, or the fused models' names joined by "+"
    format: str
    file: str  # its name in the staging folder
    outputs: tuple[OutputSource, ...]  # one, or one per fused model
    saved_model: Path
    preprocessing: Preprocessing
    converter: ConverterInfo
    staging: Path
    check_images: Path  # .npy (N, H, W, 3) float32: verification images or probes
    int8_io: str = "int8"
    target: str | None = None
    calibration: Path | None = None  # .npy of calibration tensors (int8 only)
    calibration_text: str | None = None
    reuse: Path | None = None  # an earlier artifact made from the same inputs
    reuse_sha256: str | None = None
    trunk: Trunk | None = None  # set for a fused artifact
    run_images: bool = True  # False: a reused artifact whose verification still holds

    @property
    def fused(self) -> bool:
        return self.trunk is not None


@dataclass
class ArtifactResult:
    """What `make_artifact` found: the entry (without its verification), the
    probabilities of each output on the check images, and where its time went."""

    entry: ModelEntry | FusedEntry
    probabilities: np.ndarray  # (images, outputs)
    latency_ms: float  # median of single invokes
    reused: bool
    target_problem: str | None
    seconds: dict[str, float] = field(default_factory=dict)


class StepClock:
    """Seconds spent per named step (a step may run several times)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - start


def tensor_spec(detail: dict[str, Any]) -> TensorSpec:
    scale, zero_point = detail["quantization"]
    dtype = (
        detail["dtype"].__name__ if hasattr(detail["dtype"], "__name__") else str(detail["dtype"])
    )
    quant = Quantization(float(scale), int(zero_point)) if scale else None
    return TensorSpec([int(v) for v in detail["shape"]], str(dtype), quant)


def make_artifact(job: ArtifactJob) -> ArtifactResult:
    """Convert (or reuse), inspect, load and run one artifact; see the module docstring."""
    clock = StepClock()
    backend = resolve_backend()
    with clock("convert"):
        content, reused = _content(job)
    with clock("ops"):
        report = compat.analyze_ops(content)
    with clock("load"):
        with quiet_fds():  # LiteRT announces its XNNPACK delegate on stderr
            interpreter = backend.make_interpreter(content, 1)
        delegation = delegation_report(interpreter)
        positions = _output_positions(interpreter, job)
    # A reused artifact keeps its own name in the set; a new one has its staging name.
    file = job.reuse.name if reused and job.reuse is not None else job.file
    entry = _entry(job, file, content, interpreter, positions, report)
    entry.delegate_partitions = delegation.partitions if delegation else None
    entry.undelegated_ops = delegation.undelegated_ops if delegation else []
    with clock("run"):
        tensors = np.load(job.check_images, mmap_mode="r")
        if reused and not job.run_images:
            tensors = tensors[:0]  # its earlier verification is kept: nothing to compare
        probabilities, latency = run_on_images(entry, interpreter, backend, tensors)
    with clock("load_elsewhere"):
        # This interpreter loaded and ran it above: the other backends are tried here.
        loads_in = {backend.label: LoadCheck().to_manifest()}
        loads_in.update(compat.load_in_process(content, skip=(backend.name,)))
        entry.loads_in = loads_in
    problem = compat.target_problem(report, job.target) if job.target else None
    return ArtifactResult(entry, probabilities, latency, reused, problem, clock.seconds)


def _content(job: ArtifactJob) -> tuple[bytes, bool]:
    """The artifact's bytes and whether they are an earlier file's; new bytes are written
    to the staging folder."""
    if job.reuse is not None:
        try:
            content = job.reuse.read_bytes()
        except OSError:
            content = b""
        if content and hashlib.sha256(content).hexdigest() == job.reuse_sha256:
            return content, True
    representative = None
    if job.format == "int8" and job.calibration is not None:
        representative = np.load(job.calibration, mmap_mode="r")
    content = convert_to_tflite(
        job.saved_model, job.format, representative, job.int8_io, job.target
    )
    (job.staging / job.file).write_bytes(content)
    return content, False


def _output_positions(interpreter: Any, job: ArtifactJob) -> list[int]:
    """Where each model's output sits among the interpreter's outputs. A fused artifact's
    outputs are named after its models in the serving signature."""
    if not job.fused:
        return [0]
    runner = interpreter.get_signature_runner()
    named = runner.get_output_details()
    order = [d["index"] for d in interpreter.get_output_details()]
    del runner
    names = [o.model for o in job.outputs]
    missing = [n for n in names if n not in named]
    if missing:
        raise ValueError(f"the fused artifact has no output named {', '.join(missing)}")
    return [order.index(named[n]["index"]) for n in names]


def _entry(
    job: ArtifactJob,
    file: str,
    content: bytes,
    interpreter: Any,
    positions: list[int],
    report: compat.OpReport,
) -> ModelEntry | FusedEntry:
    details = interpreter.get_output_details()
    common: dict[str, Any] = dict(
        format=job.format,
        file=file,
        sha256=hashlib.sha256(content).hexdigest(),
        size_bytes=len(content),
        input=tensor_spec(interpreter.get_input_details()[0]),
        preprocessing=job.preprocessing,
        converter=job.converter,
        ops=report.ops,
        min_runtime=compat.describe_min_runtime(report),
        calibration=job.calibration_text if job.format == "int8" else None,
    )
    if job.trunk is None:
        (only,) = job.outputs
        return ModelEntry(
            name=only.model,
            title=only.title,
            output=tensor_spec(details[0]),
            source=only.source,
            **common,
        )
    return FusedEntry(
        name=job.name,
        outputs=[
            FusedOutput(
                model=o.model,
                index=position,
                output=tensor_spec(details[position]),
                source=SourceModel(o.source.file, o.source.sha256, o.source.format),
            )
            for o, position in zip(job.outputs, positions, strict=True)
        ],
        trunk_layers=job.trunk.layers,
        trunk_last_layer=job.trunk.last_layer,
        trunk_params=job.trunk.params,
        **common,
    )


def run_on_images(
    entry: ModelEntry | FusedEntry, interpreter: Any, backend: Backend, tensors: np.ndarray
) -> tuple[np.ndarray, float]:
    """(images x outputs) probabilities, one invoke an image through the runtime's own
    classifier or fused runner, and the median latency of one invoke (ms)."""
    run: Any
    if isinstance(entry, FusedEntry):
        run = FusedRunner(entry, interpreter, [], 1).run
    else:
        classifier = TFLiteClassifier(entry, interpreter, backend, 1)
        run = lambda tensor: [classifier.predict_one(tensor)]  # noqa: E731
    rows, latencies = [], []
    for i in range(len(tensors)):
        tensor = np.asarray(tensors[i : i + 1], dtype=np.float32)
        start = time.perf_counter()
        rows.append(run(tensor))
        latencies.append((time.perf_counter() - start) * 1000.0)
    median = float(np.median(latencies)) if latencies else 0.0
    outputs = len(entry.outputs) if isinstance(entry, FusedEntry) else 1
    return np.array(rows, dtype=np.float64).reshape(len(tensors), outputs), median
