"""A loaded model set: one format of each model, run together on an image, with an ensemble.

`load_model_set` reads the manifest (checksumming every file it will load), picks the
format, opens one interpreter per model and returns a `ModelSet`. Without `fmt` it picks
the fastest format whose verification passed for every selected model, as timed on this
machine on first use and cached (`device_choice`); `ModelSet.format_reason` says why that
one ran. `choose_format` is the converting machine's view, by the manifest's latencies.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.runtime.backends import resolve_backend
from hemiface.runtime.classifier import TFLiteClassifier
from hemiface.runtime.device_choice import choose_on_device
from hemiface.runtime.errors import ManifestError
from hemiface.runtime.manifest import FORMATS, Manifest, ModelEntry, load_manifest
from hemiface.runtime.preprocess import resize_for_model, to_tensor

# When the manifest holds no verification figures, prefer the formats that are usually
# fastest on CPU (FACTS.md: full int8 < float32 < float16 ~ float32 < dynamic on x86).
UNVERIFIED_PREFERENCE = ("int8", "float32", "float16", "dynamic")


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence C-level stderr (LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate").

    The interpreter logs through fprintf, which no Python logger or environment variable
    reaches; errors still arrive as Python exceptions.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (e.g. captured by a test runner)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


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


def choose_format(manifest: Manifest, names: Sequence[str]) -> tuple[str, str]:
    """(format, reason): the fastest format that passed verification for all `names`."""
    available = [f for f in FORMATS if all(f in manifest.formats_of(n) for n in names)]
    if not available:
        raise ManifestError(f"no format is available for every model of {', '.join(names)}")
    timed: list[tuple[float, str]] = []
    for fmt in available:
        checks = [manifest.entry(n, fmt).verification for n in names]
        if all(v is not None and v.passed for v in checks):
            timed.append((sum(v.latency_ms for v in checks if v is not None), fmt))
    if timed:
        latency, fmt = min(timed)
        return fmt, f"fastest verified: {latency:.1f} ms for {len(names)} models, per manifest"
    if any(manifest.entry(n, f).verification is not None for n in names for f in available):
        raise ManifestError("no format passed verification for every model; pick one with --format")
    fmt = next(f for f in UNVERIFIED_PREFERENCE if f in available)
    return fmt, "no verification figures in the manifest: default preference"


def _takes_pixels(classifier: TFLiteClassifier) -> bool:
    """True when the model's uint8 input quantization undoes the preprocessing exactly.

    A full-int8 model calibrated on [0, 1] inputs has input scale 1/255 and zero point 0:
    quantize(pixel / 255) == pixel, so the resized uint8 pixels can be fed as they are,
    skipping a float round trip over 150,528 values per model and frame.
    """
    detail = classifier.interpreter.get_input_details()[0]
    if detail["dtype"] != np.uint8:
        return False
    scale, zero_point = detail["quantization"]
    spec = classifier.entry.preprocessing
    return (
        scale > 0
        and abs(spec.scale / scale - 1.0) < 1e-6
        and abs(spec.offset / scale + zero_point) < 1e-6
    )


def _predict_pixels(classifier: TFLiteClassifier, pixels: np.ndarray, io: tuple[int, int]) -> float:
    interpreter = classifier.interpreter
    interpreter.set_tensor(io[0], pixels)
    interpreter.invoke()
    return float(classifier.dequantize_output(interpreter.get_tensor(io[1])).reshape(-1)[0])


@dataclass
class ModelSet:
    folder: Path
    format: str
    format_reason: str
    classifiers: list[TFLiteClassifier]
    backend_label: str
    num_threads: int

    def __post_init__(self) -> None:
        # Per model: (preprocessing key, feeds uint8 pixels?, (input index, output index)).
        self._plan = []
        for c in self.classifiers:
            pixels = _takes_pixels(c)
            key = (tuple(asdict(c.entry.preprocessing).values()), pixels)
            io = (
                c.interpreter.get_input_details()[0]["index"],
                c.interpreter.get_output_details()[0]["index"],
            )
            self._plan.append((key, pixels, io))

    @property
    def entries(self) -> list[ModelEntry]:
        return [c.entry for c in self.classifiers]

    @property
    def titles(self) -> list[str]:
        return [c.entry.title for c in self.classifiers]

    def probabilities(self, rgb: np.ndarray) -> list[float]:
        """P(positive label) of each model for one RGB uint8 image (any size)."""
        tensors: dict[tuple[Any, ...], np.ndarray] = {}
        probs = []
        for classifier, (key, pixels, io) in zip(self.classifiers, self._plan, strict=True):
            spec = classifier.entry.preprocessing
            # Models that share preprocessing share the tensor: one resize a frame.
            if key not in tensors:
                if pixels:
                    resized = resize_for_model(rgb, spec)
                    tensors[key] = np.ascontiguousarray(resized, dtype=np.uint8)[np.newaxis]
                else:
                    tensors[key] = to_tensor(rgb, spec)
            if pixels:
                probs.append(_predict_pixels(classifier, tensors[key], io))
            else:
                probs.append(classifier.predict_one(tensors[key]))
        return probs

    def combine(self, probs: Sequence[float]) -> SetPrediction:
        """The per-model and ensemble verdicts for given probabilities (e.g. smoothed)."""
        models = [
            ModelPrediction(
                name=c.entry.name,
                title=c.entry.title,
                p=float(p),
                label=c.entry.label_for(float(p)),
                uncertain=c.entry.is_uncertain(float(p)),
            )
            for c, p in zip(self.classifiers, probs, strict=True)
        ]
        first = self.classifiers[0].entry
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


def load_model_set(
    folder: Path,
    fmt: str | None = None,
    only: list[str] | None = None,
    backend: str | None = None,
    num_threads: int | None = None,
) -> ModelSet:
    """Open one format of every model (or of `only`) of the model set in `folder`.

    Model files are checksummed before they reach the interpreter; a mismatch, a newer
    manifest schema, an unknown model or format raise ManifestError / BackendError.
    """
    folder = Path(folder)
    if fmt is not None and fmt not in FORMATS:
        raise ManifestError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    manifest = load_manifest(folder, check_files=False)
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
    chosen_backend = resolve_backend(backend)
    if fmt is None:
        # The fastest verified format timed on this machine (cached), not the converter's.
        with quiet_native_stderr():
            choice = choose_on_device(folder, manifest, names, chosen_backend, num_threads)
        fmt, reason = choice.format, choice.reason
    else:
        missing = [n for n in names if fmt not in manifest.formats_of(n)]
        if missing:
            raise ManifestError(f"{folder}: no {fmt} artifact of {', '.join(missing)}")
        reason = "asked for"
    with quiet_native_stderr():
        classifiers = [
            TFLiteClassifier.open(folder, manifest.entry(n, fmt), chosen_backend, num_threads)
            for n in names
        ]
    return ModelSet(
        folder=folder,
        format=fmt,
        format_reason=reason,
        classifiers=classifiers,
        backend_label=chosen_backend.label,
        num_threads=classifiers[0].num_threads,
    )
