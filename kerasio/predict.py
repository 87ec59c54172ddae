"""The batched Keras forward pass (inference mode), for every caller of a Keras model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

BATCH_SIZE = 32


def predict_batched(
    model: Any,
    images: np.ndarray,
    batch_size: int = BATCH_SIZE,
    divisor: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """`model(x, training=False)` over `images` in batches, as one numpy array (N, ...).

    `divisor` divides each batch after conversion to float32 (255 for uint8 images the
    model wants in [0, 1]); `progress(done, total)` is called after every batch. One traced
    function serves every batch (the last, shorter batch included), for Keras 3 and
    tf-keras models alike.
    """
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def forward(x: Any) -> Any:
        return model(x, training=False)

    total = len(images)
    if total == 0:
        raise ValueError("predict_batched needs at least one image")
    outputs = []
    for start in range(0, total, batch_size):
        chunk = np.asarray(images[start : start + batch_size], dtype=np.float32)
        if divisor is not None:
            chunk = chunk / np.float32(divisor)
        outputs.append(np.asarray(forward(tf.constant(chunk))))
        if progress is not None:
            progress(min(start + batch_size, total), total)
    return np.concatenate(outputs)


def predict_probabilities(
    model: Any, images: np.ndarray, batch_size: int = BATCH_SIZE, divisor: float | None = None
) -> np.ndarray:
    """P(positive label) per image, float64 (N,), from a one-sigmoid-unit model."""
    return predict_batched(model, images, batch_size, divisor).reshape(-1).astype(np.float64)
