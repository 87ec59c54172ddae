"""A loaded model set: one format of each model, run together on an image, with an ensemble.

`load_model_set` reads the manifest (checksumming every file it will load), picks the
format, opens one interpreter per model (one per fused artifact for the models it serves:
their shared trunk runs once) and returns a `ModelSet`, which runs its interpreters one
after the other or at once on threads. Without `fmt` it picks the fastest format whose
verification passed for every selected model, as timed on this machine on first use and
cached (`device_choice`, fused artifacts timed as they will run);
`ModelSet.format_reason` says why that one ran. `choose_format` is the converting
machine's view, by the manifest's latencies.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.core.quiet import quiet_fds
from hemiface.runtime.backends import resolve_backend
from hemiface.runtime.classifier import TFLiteClassifier
from hemiface.runtime.device_choice import choose_on_device
from hemiface.runtime.errors import BackendError, HemifaceError, ManifestError
from hemiface.runtime.fused import FusedRunner, choose_fused, feed_pixels, pixel_feed
from hemiface.runtime.manifest import (
    FORMATS,
    Manifest,
    ModelEntry,
    Preprocessing,
    load_manifest,
    read_consistently,
)
from hemiface.runtime.preprocess import resize_for_model, to_tensor

# The order tried when the manifest holds no verification figures. No format is fastest
# everywhere: on this project's x86 measurements (benchmarks/results/report.md) int8 ran
# the MobileNetV2 models 1.3-1.8x faster than float32 but the small CNN at 0.6-0.7x, and
# dynamic range was the slowest for the MobileNetV2s; where figures exist, they decide.
UNVERIFIED_PREFERENCE = ("int8", "float32", "float16", "dynamic")
CONCURRENCY = ("sequential", "threads")
# More interpreter threads than this buys nothing; 100000 made the process run out of
# threads and crash.
MAX_THREADS = 64


@dataclass
class ModelPrediction:
    name: str
    title: str
    p: float  # P(positive label), dequantized
    label: str
    uncertain: bool


@dataclass
class SetPrediction:
    """Every model's answer for one image, and what they say together."""

    models: list[ModelPrediction]
    format: str
    mean_p: float
    label: str  # the ensemble's label, by the mean probability
    agree: int  # how many models give the ensemble's label
    disagree: bool  # the models do not all give the same label
    uncertain: bool  # the mean probability falls in the uncertainty band

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _set_latency(manifest: Manifest, names: Sequence[str], fmt: str, fuse: bool) -> float:
    """The manifest's latency of one prediction of `names` in `fmt`: each fused artifact
    once, the other models' own artifacts."""
    fused = choose_fused(manifest, names, fmt) if fuse else []
    covered = {m for f in fused for m in f.models}
    total = sum(max(v.latency_ms for v in f.verification.values()) for f in fused)
    for name in names:
        verification = manifest.entry(name, fmt).verification
        if name not in covered and verification is not None:
            total += verification.latency_ms
    return total


def choose_format(manifest: Manifest, names: Sequence[str], fuse: bool = True) -> tuple[str, str]:
    """(format, reason): the fastest format that passed verification for all `names`."""
    available = [f for f in FORMATS if all(f in manifest.formats_of(n) for n in names)]
    if not available:
        raise ManifestError(f"no format is available for every model of {', '.join(names)}")
    timed: list[tuple[float, str]] = []
    for fmt in available:
        checks = [manifest.entry(n, fmt).verification for n in names]
        if all(v is not None and v.passed for v in checks):
            timed.append((_set_latency(manifest, names, fmt, fuse), fmt))
    if timed:
        latency, fmt = min(timed)
        return fmt, f"fastest verified: {latency:.1f} ms for {len(names)} models, per manifest"
    if any(manifest.entry(n, f).verification is not None for n in names for f in available):
        raise ManifestError("no format passed verification for every model; pick one with --format")
    fmt = next(f for f in UNVERIFIED_PREFERENCE if f in available)
    return fmt, "no verification figures in the manifest: default preference"


@dataclass
class _Unit:
    """One interpreter of the set and the models (positions in the set) it answers for."""

    positions: list[int]
    spec: Preprocessing
    pixels: str | None  # how resized uint8 pixels are fed (see pixel_feed), or None: floats
    run: Callable[[np.ndarray], list[float]]
    interpreter: Any
    file: str  # the artifact, for error messages

    @property
    def key(self) -> tuple[Any, ...]:
        return (*asdict(self.spec).values(), self.pixels)

    def answer(self, tensor: np.ndarray, folder: Path) -> list[float]:
        """`run`, with an interpreter failure turned into one line naming the file."""
        try:
            values = self.run(tensor)
        except (RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise HemifaceError(f"{folder / self.file}: the interpreter failed ({first})") from None
        if not all(math.isfinite(v) for v in values):
            # A damaged float16 artifact (checksum updated) gave NaN, which every label
            # comparison treats as "Left": never an answer.
            raise HemifaceError(
                f"{folder / self.file}: the model gave a non-finite output "
                f"({', '.join(repr(v) for v in values)}); the artifact is damaged"
            )
        return values


def _classifier_unit(position: int, classifier: TFLiteClassifier) -> _Unit:
    spec = classifier.entry.preprocessing
    interpreter = classifier.interpreter
    detail = interpreter.get_input_details()[0]
    pixels = pixel_feed(detail, spec.scale, spec.offset)
    io = (detail["index"], interpreter.get_output_details()[0]["index"])

    def run_pixels(tensor: np.ndarray) -> list[float]:
        interpreter.set_tensor(io[0], feed_pixels(tensor, pixels or "uint8"))
        interpreter.invoke()
        return [float(classifier.dequantize_output(interpreter.get_tensor(io[1])).reshape(-1)[0])]

    def run_floats(tensor: np.ndarray) -> list[float]:
        return [classifier.predict_one(tensor)]

    run = run_pixels if pixels else run_floats
    return _Unit([position], spec, pixels, run, interpreter, classifier.entry.file)


def _fused_unit(positions: list[int], runner: FusedRunner) -> _Unit:
    run = runner.run_pixels if runner.pixels else runner.run
    spec = runner.entry.preprocessing
    return _Unit(positions, spec, runner.pixels, run, runner.interpreter, runner.entry.file)


@dataclass
class ModelSet:
    folder: Path
    format: str
    format_reason: str
    classifiers: list[TFLiteClassifier]  # the models that run from their own artifact
    backend_label: str
    num_threads: int
    fused: list[FusedRunner] = field(default_factory=list)  # each serves several models
    # "sequential": one interpreter after the other; "threads": the interpreters at once
    # (their invoke releases the GIL), the first on the calling thread.
    concurrency: str = "sequential"
    names: list[str] = field(default_factory=list)  # model order; default: classifiers'

    def __post_init__(self) -> None:
        if self.concurrency not in CONCURRENCY:
            raise ValueError(f"concurrency must be one of {', '.join(CONCURRENCY)}")
        by_name = {c.entry.name: c.entry for c in self.classifiers}
        for runner in self.fused:
            by_name.update({m.name: m for m in runner.models})
        self.names = self.names or [c.entry.name for c in self.classifiers]
        self._entries = [by_name[name] for name in self.names]
        position = {name: i for i, name in enumerate(self.names)}
        units = [_fused_unit([position[m.name] for m in r.models], r) for r in self.fused]
        units += [_classifier_unit(position[c.entry.name], c) for c in self.classifiers]
        # The unit with the most models (the fused trunk) first: it runs on the caller's
        # thread while the others run beside it.
        self._units = sorted(units, key=lambda u: -len(u.positions))
        self._pool: ThreadPoolExecutor | None = None

    @property
    def entries(self) -> list[ModelEntry]:
        return list(self._entries)

    @property
    def titles(self) -> list[str]:
        return [e.title for e in self._entries]

    @property
    def pixel_inputs(self) -> list[str | None]:
        """Per interpreter: how resized uint8 pixels are fed ("uint8", "int8"), or None
        when it takes preprocessed floats."""
        return [u.pixels for u in self._units]

    @property
    def interpreters(self) -> int:
        """How many interpreters one prediction invokes."""
        return len(self._units)

    def describe(self) -> str:
        """E.g. "fused Base+Fine-tuned + CNN; 2 interpreter(s) at once"."""
        parts = [f"fused {'+'.join(m.title for m in r.models)}" for r in self.fused]
        parts += [c.entry.title for c in self.classifiers]
        mode = "at once" if self.concurrency == "threads" else "one after the other"
        return f"{' + '.join(parts)}; {self.interpreters} interpreter(s) {mode}"

    def tensors(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Each unit's input for one RGB uint8 image: one resize per preprocessing."""
        made: dict[tuple[Any, ...], np.ndarray] = {}
        out = []
        for unit in self._units:
            if unit.key not in made:
                if unit.pixels:
                    resized = resize_for_model(rgb, unit.spec)
                    made[unit.key] = np.ascontiguousarray(resized, dtype=np.uint8)[np.newaxis]
                else:
                    made[unit.key] = to_tensor(rgb, unit.spec)
            out.append(made[unit.key])
        return out

    def _at_once(self, jobs: list[Callable[[], Any]]) -> list[Any]:
        """Run the jobs, on threads when the set's concurrency says so; results in order."""
        if self.concurrency != "threads" or len(jobs) < 2:
            return [job() for job in jobs]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(len(self._units) - 1, thread_name_prefix="hemiface")
        futures = [self._pool.submit(job) for job in jobs[1:]]
        return [jobs[0]()] + [f.result() for f in futures]

    def run_tensors(self, tensors: list[np.ndarray]) -> list[float]:
        """The probabilities from inputs made by `tensors`, in model order."""
        units = self._units
        answers = self._at_once(
            [
                functools.partial(u.answer, t, self.folder)
                for u, t in zip(units, tensors, strict=True)
            ]
        )
        probs = [0.0] * len(self._entries)
        for unit, values in zip(units, answers, strict=True):
            for position, value in zip(unit.positions, values, strict=True):
                probs[position] = value
        return probs

    def probabilities(self, rgb: np.ndarray) -> list[float]:
        """P(positive label) of each model for one RGB uint8 image (any size).

        An interpreter that fails on the input raises HemifaceError naming the model file.
        """
        return self.run_tensors(self.tensors(rgb))

    def bare_invokes(self) -> None:
        """Invoke every interpreter once on whatever input it holds (benchmarks: the cost
        of the arithmetic alone, against which the toolkit's overhead is measured)."""
        self._at_once([u.interpreter.invoke for u in self._units])

    def close(self) -> None:
        """Stop the worker threads (a set used with concurrency "threads")."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def combine(self, probs: Sequence[float]) -> SetPrediction:
        """The per-model and ensemble verdicts for given probabilities (e.g. smoothed)."""
        models = [
            ModelPrediction(
                name=c.name,
                title=c.title,
                p=float(p),
                label=c.label_for(float(p)),
                uncertain=c.is_uncertain(float(p)),
            )
            for c, p in zip(self._entries, probs, strict=True)
        ]
        first = self._entries[0]
        mean_p = float(np.mean(probs))
        label = first.label_for(mean_p)
        labels = [m.label for m in models]
        return SetPrediction(
            models=models,
            format=self.format,
            mean_p=mean_p,
            label=label,
            agree=labels.count(label),
            disagree=len(set(labels)) > 1,
            uncertain=first.is_uncertain(mean_p),
        )

    def predict(self, rgb: np.ndarray) -> SetPrediction:
        return self.combine(self.probabilities(rgb))


@dataclass(frozen=True)
class LoadChecks:
    """What a command asks of the set beyond the checksums: the manifest's sha256 as a
    checked signature lists it (any other manifest is refused), and whether a format
    asked for by name must have passed verification at convert."""

    manifest_sha256: str | None = None
    verified_only: bool = False


def load_model_set(
    folder: Path,
    fmt: str | None = None,
    only: list[str] | None = None,
    backend: str | None = None,
    num_threads: int | None = None,
    fuse: bool = True,
    concurrency: str = "sequential",
    checks: LoadChecks | None = None,
) -> ModelSet:
    """Open one format of every model (or of `only`) of the model set in `folder`.

    With `fuse`, models that a passed fused artifact of the format serves run through it
    (their shared trunk once); the others, and all with `fuse=False`, from their own
    artifacts. `concurrency` is "sequential" or "threads" (see ModelSet).
    Model files are checksummed before they reach the interpreter; a mismatch, a newer
    manifest schema, an unknown model or format raise ManifestError / BackendError. The
    models come from one version of the set: when a convert publishes a new version while
    this reads, the new one is read whole (`read_consistently`).
    """
    folder = Path(folder)
    if fmt is not None and fmt not in FORMATS:
        raise ManifestError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if num_threads is not None and not 1 <= num_threads <= MAX_THREADS:
        raise BackendError(f"--threads must be 1 to {MAX_THREADS} (got {num_threads})")
    if concurrency not in CONCURRENCY:
        raise ManifestError(f"concurrency must be one of {', '.join(CONCURRENCY)}")
    return read_consistently(
        folder,
        lambda: _open_model_set(
            folder, fmt, only, backend, num_threads, fuse, concurrency, checks or LoadChecks()
        ),
    )


def _check_verified(folder: Path, manifest: Manifest, names: list[str], fmt: str) -> None:
    """ManifestError naming the first artifact of `fmt` that failed verification at convert
    (an artifact without figures, from a set converted without --verify, is let through)."""
    for name in names:
        entry = manifest.entry(name, fmt)
        if entry.verification is not None and not entry.verification.passed:
            v = entry.verification
            raise ManifestError(
                f"{folder / entry.file}: failed verification at convert ({v.flips} of "
                f"{v.n_images} labels differ from its Keras source, max |dp| "
                f"{v.max_abs_dp:.3f}); refusing --format {fmt}: choose a format that passed"
            )


def select_models(manifest: Manifest, folder: Path, only: Sequence[str] | None) -> list[str]:
    """The set's model names, or those of `only` (ManifestError naming any it lacks)."""
    names = manifest.names()
    if not names:
        raise ManifestError(f"{folder}: the manifest lists no models")
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ManifestError(
                f"{folder}: no model named {', '.join(unknown)} (the set has {', '.join(names)})"
            )
        names = [n for n in names if n in only]
    return names


def _open_model_set(
    folder: Path,
    fmt: str | None,
    only: list[str] | None,
    backend: str | None,
    num_threads: int | None,
    fuse: bool,
    concurrency: str,
    checks: LoadChecks,
) -> ModelSet:
    manifest = load_manifest(folder, check_files=False, pinned_sha256=checks.manifest_sha256)
    names = select_models(manifest, folder, only)
    chosen_backend = resolve_backend(backend)
    if fmt is None:
        # The fastest verified format timed on this machine (cached), not the converter's.
        with quiet_fds(2):
            choice = choose_on_device(
                folder, manifest, names, chosen_backend, num_threads, fuse=fuse
            )
        fmt, reason = choice.format, choice.reason
    else:
        missing = [n for n in names if fmt not in manifest.formats_of(n)]
        if missing:
            raise ManifestError(f"{folder}: no {fmt} artifact of {', '.join(missing)}")
        if checks.verified_only:
            _check_verified(folder, manifest, names, fmt)
        reason = "asked for"
    fused_entries = choose_fused(manifest, names, fmt) if fuse else []
    covered = {m for f in fused_entries for m in f.models}
    with quiet_fds(2):
        runners = [
            FusedRunner.open(
                folder,
                f,
                [manifest.entry(m, fmt) for m in f.models],
                chosen_backend,
                num_threads,
            )
            for f in fused_entries
        ]
        classifiers = [
            TFLiteClassifier.open(folder, manifest.entry(n, fmt), chosen_backend, num_threads)
            for n in names
            if n not in covered
        ]
    threads = runners[0].num_threads if runners else classifiers[0].num_threads
    return ModelSet(
        folder=folder,
        format=fmt,
        format_reason=reason,
        classifiers=classifiers,
        backend_label=chosen_backend.label,
        num_threads=threads,
        fused=runners,
        concurrency=concurrency,
        names=names,
    )
