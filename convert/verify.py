"""Compare a converted artifact with its Keras source on the same preprocessed images.

The artifact runs through the runtime's own `TFLiteClassifier` (quantized input and
output handled, output dequantized before any comparison), so what is verified here is
what the device will compute.
"""

from __future__ import annotations

import time

import numpy as np

from hemiface.core import metrics
from hemiface.core.quiet import quiet_fds
from hemiface.runtime.backends import Backend, resolve_backend
from hemiface.runtime.classifier import TFLiteClassifier
from hemiface.runtime.manifest import ModelEntry, Verification

# Images per Keras forward pass when the source model is run on the verification set.
KERAS_BATCH = 16


def artifact_probabilities(
    content: bytes, entry: ModelEntry, tensors: np.ndarray, backend: Backend | None = None
) -> tuple[np.ndarray, float]:
    """P(positive label) for each image with one invoke each, and the median latency (ms)."""
    backend = backend or resolve_backend()
    with quiet_fds():  # LiteRT announces its XNNPACK delegate on stderr
        interpreter = backend.make_interpreter(content, 1)
    classifier = TFLiteClassifier(entry, interpreter, backend, 1)
    probabilities, latencies = [], []
    for i in range(len(tensors)):
        start = time.perf_counter()
        probabilities.append(classifier.predict_one(tensors[i : i + 1]))
        latencies.append((time.perf_counter() - start) * 1000.0)
    return np.array(probabilities, dtype=np.float64), float(np.median(latencies))


def compare_with_source(
    source_p: np.ndarray,
    artifact_p: np.ndarray,
    threshold: float,
    labels: list[int | None],
    dataset: str,
    latency_ms: float,
    positive_index: int = 1,
    max_flip_rate: float | None = None,
) -> Verification:
    """Agreement, flips, |Δp| statistics and accuracy (when every image has a label)."""
    flips = metrics.label_flips(source_p, artifact_p, threshold)
    n = len(source_p)
    accuracy = source_accuracy = None
    if n and all(label is not None for label in labels):
        truth = np.array([label == positive_index for label in labels])
        accuracy = metrics.accuracy(truth, artifact_p, threshold)
        source_accuracy = metrics.accuracy(truth, source_p, threshold)
    passed = max_flip_rate is None or (flips / n if n else 0.0) <= max_flip_rate
    return Verification(
        dataset=dataset,
        n_images=n,
        agreement=metrics.agreement(source_p, artifact_p, threshold),
        flips=flips,
        mean_abs_dp=metrics.mean_abs_dp(source_p, artifact_p),
        p99_abs_dp=metrics.p99_abs_dp(source_p, artifact_p),
        max_abs_dp=metrics.max_abs_dp(source_p, artifact_p),
        latency_ms=round(latency_ms, 4),
        passed=passed,
        accuracy=accuracy,
        source_accuracy=source_accuracy,
        max_flip_rate=max_flip_rate,
    )
