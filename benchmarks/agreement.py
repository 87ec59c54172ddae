"""The agreement section: every model and format on one labelled folder.

All variants see the same tensors (the runtime's reading and preprocessing, as recorded
in the manifest), so |Δp| between an artifact and its Keras source measures conversion
alone. Needs TensorFlow for the Keras sources; without a source, an artifact still gets
its accuracy, AUC, calibration and flip figures.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.benchmarks import metrics
from hemiface.benchmarks.inputs import LabelledImage
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
) -> tuple[np.ndarray, np.ndarray, list[dict[str, str]]]:
    """(tensors (N, H, W, 3), labels (N,), failures): unreadable images are skipped."""
    tensors, ys, failures = [], [], []
    for item in images:
        try:
            tensors.append(to_tensor(read_image(item.path), prep)[0])
            ys.append(item.y)
        except HemifaceError as exc:
            failures.append({"item": str(item.path), "error": str(exc)})
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


def run_agreement(
    manifest: Manifest,
    model_set: Path,
    sources: dict[str, Path | None],
    images: list[LabelledImage],
    models: list[str],
    formats: list[str],
    use_keras: bool = True,
    progress: Progress | None = None,
    unsafe: bool = False,
    custom_objects: Path | None = None,
) -> dict[str, Any]:
    first = manifest.entry(models[0], manifest.formats_of(models[0])[0])
    batch, y, failures = load_batch(images, first.preprocessing)
    threshold = first.threshold
    p: dict[tuple[str, str], np.ndarray] = {}
    p_flip: dict[tuple[str, str], np.ndarray] = {}
    objects = None
    if use_keras and custom_objects is not None:
        from hemiface.kerasio import load_custom_objects

        objects = load_custom_objects(custom_objects)
    for name in models:
        variants: list[str] = [KERAS] if use_keras and sources.get(name) else []
        variants += [f for f in manifest.formats_of(name) if f in formats]
        for variant in variants:
            if progress:
                progress(f"agreement {name} {variant}")
            try:
                if variant == KERAS:
                    p[name, variant], p_flip[name, variant] = predict_keras(
                        sources[name], batch, unsafe, objects
                    )
                else:
                    p[name, variant], p_flip[name, variant] = predict_tflite(
                        model_set, manifest, name, variant, batch
                    )
            except Exception as exc:  # noqa: BLE001 - one bad variant must not stop the rest
                failures.append({"item": f"{name} {variant}", "error": one_line(exc)})
    return summarize_agreement(p, p_flip, y, models, threshold, failures)


def summarize_agreement(
    p: dict[tuple[str, str], np.ndarray],
    p_flip: dict[tuple[str, str], np.ndarray],
    y: np.ndarray,
    models: list[str],
    threshold: float,
    failures: list[dict[str, str]],
) -> dict[str, Any]:
    """Every agreement figure from the probability vectors (pure numpy)."""
    vs_source, quality = [], []
    for (name, variant), probs in p.items():
        quality.append(
            {
                "model": name,
                "variant": variant,
                "n": int(probs.size),
                "accuracy": core.accuracy(y, probs, threshold),
                "roc_auc": core.roc_auc(y, probs),
                "ece": core.ece(y, probs, threshold=threshold),
                "flip_consistency": core.flip_consistency(probs, p_flip[name, variant]),
                "mean_p": float(probs.mean()),
            }
        )
        source = p.get((name, KERAS))
        if variant != KERAS and source is not None:
            figures = metrics.compare_probabilities(source, probs, threshold).to_dict()
            abs_dp = core.abs_dp(source, probs)
            vs_source.append(
                {
                    "model": name,
                    "format": variant,
                    **figures,
                    "abs_dp": [round(float(v), 7) for v in abs_dp],
                }
            )
    variants = list(dict.fromkeys(v for _, v in p))
    between_models = []
    for variant in variants:
        present = [name for name in models if (name, variant) in p]
        pairs = []
        for a, b in combinations(present, 2):
            la = core.predicted_labels(p[a, variant], threshold)
            lb = core.predicted_labels(p[b, variant], threshold)
            pairs.append(
                {
                    "a": a,
                    "b": b,
                    "label_agreement": core.agreement(p[a, variant], p[b, variant], threshold),
                    "kappa": core.cohen_kappa(la, lb),
                }
            )
        ensemble: dict[str, Any] = {"models": present}
        if len(present) >= 2:
            vectors = [p[name, variant] for name in present]
            mean_p = metrics.ensemble_probability(vectors)
            ensemble["mean_p_accuracy"] = core.accuracy(y, mean_p, threshold)
            ensemble["mean_p_roc_auc"] = core.roc_auc(y, mean_p)
            ensemble["majority_accuracy"] = float(
                (metrics.majority_vote(vectors, threshold) == y).mean()
            )
        between_models.append({"variant": variant, "pairs": pairs, "ensemble": ensemble})
    return {
        "n_images": int(y.size),
        "n_positive": int(y.sum()),
        "threshold": threshold,
        "vs_source": vs_source,
        "quality": quality,
        "between_models": between_models,
        "failures": failures,
    }
