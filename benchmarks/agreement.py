"""The agreement section: every model and format on one labelled folder.

All variants see the same tensors (the runtime's reading and preprocessing, as recorded
in the manifest), so |Δp| between an artifact and its Keras source measures conversion
alone. Needs TensorFlow for the Keras sources; without a source, an artifact still gets
its accuracy, AUC, calibration and flip figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.benchmarks.inputs import LabelledImage
from hemiface.benchmarks.sections import (
    AgreementPair,
    AgreementSection,
    BetweenModels,
    Ensemble,
    Failure,
    ModelPair,
    QualityRow,
)
from hemiface.core import metrics as core
from hemiface.core.errors import HemifaceError, one_line
from hemiface.runtime.classifier import TFLiteClassifier
from hemiface.runtime.images import read_image
from hemiface.runtime.manifest import Manifest, Preprocessing
from hemiface.runtime.preprocess import to_tensor

KERAS = "keras"
Progress = Callable[[str], None]


def load_batch(
    images: list[LabelledImage], prep: Preprocessing
) -> tuple[np.ndarray, np.ndarray, list[Failure]]:
    """(tensors (N, H, W, 3), labels (N,), failures): unreadable images are skipped."""
    tensors, ys = [], []
    failures: list[Failure] = []
    for item in images:
        try:
            tensors.append(to_tensor(read_image(item.path), prep)[0])
            ys.append(item.y)
        except HemifaceError as exc:
            failures.append(Failure(str(item.path), str(exc)))
    if not tensors:
        raise HemifaceError("no readable image in the labelled folder")
    return np.stack(tensors).astype(np.float32), np.asarray(ys, dtype=np.int64), failures


def predict_keras(
    path: Path,
    batch: np.ndarray,
    unsafe: bool = False,
    custom_objects: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(p, p on the mirrored images) of a Keras source (any file convert reads)."""
    from hemiface.kerasio import load_keras_model, predict_probabilities, quiet_tensorflow

    quiet_tensorflow()
    model = load_keras_model(path, unsafe=unsafe, custom_objects=custom_objects).model
    return predict_probabilities(model, batch), predict_probabilities(model, batch[:, :, ::-1, :])


def predict_tflite(
    folder: Path, manifest: Manifest, name: str, fmt: str, batch: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    classifier = TFLiteClassifier.open(folder, manifest.entry(name, fmt))
    flipped = np.ascontiguousarray(batch[:, :, ::-1, :])
    return classifier.predict(batch).astype(np.float64), classifier.predict(flipped)


@dataclass
class KerasLoading:
    """How the Keras sources load: Lambda layers allowed, a trusted custom-objects file."""

    unsafe: bool = False
    custom_objects: Path | None = None


def run_agreement(
    manifest: Manifest,
    model_set: Path,
    sources: dict[str, Path | None],
    images: list[LabelledImage],
    models: list[str],
    formats: list[str],
    keras: KerasLoading | None = None,
    progress: Progress | None = None,
) -> Probabilities:
    """Every variant's probabilities on the images (and on their mirror images); with
    `keras`, the Keras sources are the first variant of each model."""
    first = manifest.entry(models[0], manifest.formats_of(models[0])[0])
    batch, y, failures = load_batch(images, first.preprocessing)
    found = Probabilities(y, first.threshold, models, failures)
    objects = None
    if keras is not None and keras.custom_objects is not None:
        from hemiface.kerasio import load_custom_objects

        objects = load_custom_objects(keras.custom_objects)
    for name in models:
        source = sources.get(name)
        variants: list[str] = [KERAS] if keras is not None and source else []
        variants += [f for f in manifest.formats_of(name) if f in formats]
        for variant in variants:
            if progress:
                progress(f"agreement {name} {variant}")
            try:
                if variant == KERAS and keras is not None and source is not None:
                    pair = predict_keras(source, batch, keras.unsafe, objects)
                else:
                    pair = predict_tflite(model_set, manifest, name, variant, batch)
                found.p[name, variant], found.p_flip[name, variant] = pair
            except Exception as exc:  # noqa: BLE001 - one bad variant must not stop the rest
                failures.append(Failure(f"{name} {variant}", one_line(exc)))
    return found


@dataclass
class Probabilities:
    """Each (model, variant)'s probabilities on the labelled images and their mirrors."""

    y: np.ndarray
    threshold: float
    models: list[str]
    failures: list[Failure] = field(default_factory=list)
    p: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    p_flip: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)


def compare_probabilities(
    p_a: np.ndarray, p_b: np.ndarray, threshold: float = 0.5, model: str = "", fmt: str = ""
) -> AgreementPair:
    """How two probability vectors over the same images compare (|Δp| per image kept)."""
    a = np.asarray(p_a, dtype=np.float64)
    b = np.asarray(p_b, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"need two equal, non-empty vectors (got {a.shape} and {b.shape})")
    return AgreementPair(
        model=model,
        format=fmt,
        n=int(a.size),
        label_agreement=core.agreement(a, b, threshold),
        flips=core.label_flips(a, b, threshold),
        mean_abs_dp=core.mean_abs_dp(a, b),
        p99_abs_dp=core.p99_abs_dp(a, b),
        max_abs_dp=core.max_abs_dp(a, b),
        abs_dp=[round(float(v), 7) for v in core.abs_dp(a, b)],
    )


def ensemble_probability(per_model: list[np.ndarray]) -> np.ndarray:
    """The mean probability of the models, image by image."""
    return np.mean(np.stack([np.asarray(p, dtype=np.float64) for p in per_model]), axis=0)


def majority_vote(per_model: list[np.ndarray], threshold: float = 0.5) -> np.ndarray:
    votes = np.stack([core.predicted_labels(p, threshold) for p in per_model])
    return (votes.sum(axis=0) * 2 > len(per_model)).astype(np.int64)


def summarize_agreement(found: Probabilities, data_dir: str | None = None) -> AgreementSection:
    """Every agreement figure from the probability vectors (pure numpy)."""
    y, threshold, p = found.y, found.threshold, found.p
    vs_source, quality = [], []
    for (name, variant), probs in p.items():
        quality.append(
            QualityRow(
                model=name,
                variant=variant,
                n=int(probs.size),
                accuracy=core.accuracy(y, probs, threshold),
                roc_auc=core.roc_auc(y, probs),
                ece=core.ece(y, probs, threshold=threshold),
                flip_consistency=core.flip_consistency(probs, found.p_flip[name, variant]),
                mean_p=float(probs.mean()),
            )
        )
        source = p.get((name, KERAS))
        if variant != KERAS and source is not None:
            vs_source.append(compare_probabilities(source, probs, threshold, name, variant))
    variants = list(dict.fromkeys(v for _, v in p))
    return AgreementSection(
        "ok",
        data_dir=data_dir,
        n_images=int(y.size),
        n_positive=int(y.sum()),
        threshold=threshold,
        vs_source=vs_source,
        quality=quality,
        between_models=[_between_models(found, variant) for variant in variants],
        failures=found.failures,
    )


def _between_models(found: Probabilities, variant: str) -> BetweenModels:
    y, threshold, p = found.y, found.threshold, found.p
    present = [name for name in found.models if (name, variant) in p]
    pairs = []
    for a, b in combinations(present, 2):
        la = core.predicted_labels(p[a, variant], threshold)
        lb = core.predicted_labels(p[b, variant], threshold)
        agreement = core.agreement(p[a, variant], p[b, variant], threshold)
        pairs.append(ModelPair(a, b, agreement, core.cohen_kappa(la, lb)))
    ensemble = Ensemble(present)
    if len(present) >= 2:
        vectors = [p[name, variant] for name in present]
        mean_p = ensemble_probability(vectors)
        ensemble.mean_p_accuracy = core.accuracy(y, mean_p, threshold)
        ensemble.mean_p_roc_auc = core.roc_auc(y, mean_p)
        ensemble.majority_accuracy = float((majority_vote(vectors, threshold) == y).mean())
    return BetweenModels(variant, pairs, ensemble)
