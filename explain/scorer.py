"""The function IG explains, F(x), and its batched gradient, compiled once per model.

A laterality model outputs p = P(Right) from one sigmoid. Explaining "Right" means
F = p; explaining "Left" means F = 1 - p. Both are written F = offset + sign * p with
sign and offset passed as tensors, so one traced graph serves both targets, and the
Left map is exactly the negated Right map (sign is +1 or -1, an exact float product).

`path_gradients` takes the input, one baseline and a batch of alphas; it builds the
interpolated images inside the graph, so memory is bounded by the batch, not by the
number of steps, and returns the weighted sum of the batch's gradients (H, W, C) plus
F at each alpha.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from hemiface.core.domain import LABELS, POSITIVE_LABEL
from hemiface.core.errors import HemifaceError


@dataclass(frozen=True)
class Target:
    """The class being explained and how its score follows from p = P(Right)."""

    label: str

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise HemifaceError(f"target must be Left or Right, got {self.label!r}")

    @property
    def sign(self) -> float:
        return 1.0 if self.label == POSITIVE_LABEL else -1.0

    @property
    def offset(self) -> float:
        return 0.0 if self.label == POSITIVE_LABEL else 1.0

    def score(self, p: np.ndarray | float) -> np.ndarray | float:
        return self.offset + self.sign * p

    @classmethod
    def predicted(cls, p: float, threshold: float = 0.5) -> Target:
        """The predicted class: Right when p >= threshold."""
        return cls(LABELS[1] if p >= threshold else LABELS[0])


def input_size(model: Any, name: str = "model") -> tuple[int, int]:
    """(height, width) of a model with one (batch, H, W, 3) input and one (batch, 1) output."""
    inputs = list(getattr(model, "inputs", None) or [])
    outputs = list(getattr(model, "outputs", None) or [])
    if len(inputs) != 1 or len(outputs) != 1:
        raise HemifaceError(f"{name}: expected one image input and one output")
    shape = tuple(inputs[0].shape)
    if len(shape) != 4 or shape[3] != 3 or shape[1] is None or shape[2] is None:
        raise HemifaceError(f"{name}: input shape {shape} is not (batch, H, W, 3)")
    if tuple(outputs[0].shape)[1:] != (1,):
        raise HemifaceError(
            f"{name}: output shape {tuple(outputs[0].shape)} is not one sigmoid unit (batch, 1)"
        )
    return int(shape[1]), int(shape[2])


def architecture_key(model: Any) -> str:
    """A fingerprint of a model's layers (class, config without names, weight shapes).

    Two models with the same key compute the same function of their weights, so one
    traced graph can serve both after `set_weights` (tracing MobileNetV2's gradient
    costs ~3.5 s; the base and fine-tuned models share the architecture).
    """
    layers = []
    for layer in model.layers:
        config = {k: v for k, v in layer.get_config().items() if k not in ("name", "trainable")}
        shapes = [list(weight.shape) for weight in layer.weights]
        layers.append([type(layer).__name__, config, shapes])
    return json.dumps(layers, sort_keys=True, default=str)


class ModelScorer:
    """A Keras single-sigmoid image model wrapped for IG: traced once, reused for every call."""

    def __init__(self, model: Any, name: str = "model") -> None:
        import tensorflow as tf

        self.model = model
        self.name = name
        self.height, self.width = input_size(model, name)
        image = tf.TensorSpec([self.height, self.width, 3], tf.float32)
        vector = tf.TensorSpec([None], tf.float32)
        scalar = tf.TensorSpec([], tf.float32)
        self._path_gradients = tf.function(
            self._path_gradients_graph, input_signature=[image, image, vector, vector, scalar]
        )
        batch = tf.TensorSpec([None, self.height, self.width, 3], tf.float32)
        self._probabilities = tf.function(self._probabilities_graph, input_signature=[batch])

    def _path_gradients_graph(self, x: Any, baseline: Any, alphas: Any, weights: Any, sign: Any):  # noqa: ANN202
        import tensorflow as tf

        interpolated = baseline[None] + alphas[:, None, None, None] * (x - baseline)[None]
        with tf.GradientTape() as tape:
            tape.watch(interpolated)
            p = tf.reshape(self.model(interpolated, training=False), [-1])
            # d(offset + sign * p)/dx = sign * dp/dx; the offset does not matter here.
            signed = sign * p
        gradients = tape.gradient(signed, interpolated)
        return tf.tensordot(weights, gradients, axes=1), p

    def _probabilities_graph(self, images: Any):  # noqa: ANN202
        import tensorflow as tf

        return tf.reshape(self.model(images, training=False), [-1])

    def use_weights(self, weights: list[np.ndarray], name: str) -> None:
        """Compute another model of the same architecture with this traced graph."""
        if name != self.name:
            self.model.set_weights(weights)
            self.name = name

    def path_gradients(
        self,
        x: np.ndarray,
        baseline: np.ndarray,
        alphas: np.ndarray,
        weights: np.ndarray,
        target: Target,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(sum_k weights[k] * dF/dx at x' + alphas[k](x - x'), F at each alpha)."""
        summed, p = self._path_gradients(
            np.asarray(x, np.float32),
            np.asarray(baseline, np.float32),
            np.asarray(alphas, np.float32),
            np.asarray(weights, np.float32),
            np.float32(target.sign),
        )
        return summed.numpy().astype(np.float64), np.asarray(target.score(p.numpy()))

    def probabilities(self, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """p = P(Right) for each image of an (N, H, W, 3) float array."""
        images = np.asarray(images, np.float32)
        parts = [
            self._probabilities(images[i : i + batch_size]).numpy()
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)

    def scores(self, images: np.ndarray, target: Target, batch_size: int = 16) -> np.ndarray:
        """F = the explained class's probability for each image."""
        return np.asarray(target.score(self.probabilities(images, batch_size)))
