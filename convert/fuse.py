"""Shared-trunk fusion: models whose leading layers are bit-identical run them once.

A fine-tuned sibling of a frozen backbone computes the same activations as the base model
up to the fine-tuning cut. `find_shared_trunks` finds, among the loaded models, groups of
one architecture whose longest common prefix of layers has the same class, the same
configuration (names and the trainable flag aside), the same inbound connections and
bit-identical weights (BatchNormalization's moving statistics included). `build_fused_model`
makes one Keras model of a group: the trunk once, then each model's remaining layers,
with one output per model, named after it. Each output is verified against its own Keras
source like any artifact, so a wrong match could not ship unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.kerasio import LoadedModel, is_tf_keras_model

# A trunk worth fusing carries at least this share of each model's parameters: below it
# (a shared Rescaling layer, a stem) the saving is too small for an extra artifact.
MIN_TRUNK_SHARE = 0.25
IGNORED_CONFIG_KEYS = ("name", "trainable")


@dataclass
class SharedTrunk:
    """Models (two or more, in the order given) that share their first `layers` layers."""

    models: list[LoadedModel]
    layers: int  # leading layers shared, counted in the first model's `layers`
    first_unshared: str  # name of the first layer after the trunk (in the first model)
    last_shared: str  # name of the trunk's last layer
    shared_params: int  # parameters (weights) in the trunk
    params: list[int]  # each model's parameters

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    @property
    def share(self) -> float:
        """The trunk's parameters as a share of the smallest model's."""
        return self.shared_params / max(1, min(self.params))


def _inbound(model: Any) -> list[list[int]]:
    """For each layer, the positions (in model.layers) of the layers feeding it."""
    position = {id(layer): i for i, layer in enumerate(model.layers)}
    found: list[list[int]] = []
    for layer in model.layers:
        parents: list[int] = []
        for node in getattr(layer, "_inbound_nodes", []):
            for parent in getattr(node, "parent_nodes", []):
                # Keras 3 calls the node's layer `operation`, tf-keras `layer`.
                op = getattr(parent, "operation", None) or getattr(parent, "layer", None)
                if id(op) in position:
                    parents.append(position[id(op)])
        found.append(parents)
    return found


def _config(layer: Any) -> Any:
    config = dict(layer.get_config())
    for key in IGNORED_CONFIG_KEYS:
        config.pop(key, None)
    return config


def _same_weights(a: Any, b: Any) -> bool:
    wa, wb = a.get_weights(), b.get_weights()
    if len(wa) != len(wb):
        return False
    return all(
        x.shape == y.shape and x.dtype == y.dtype and x.tobytes() == y.tobytes()
        for x, y in zip(wa, wb, strict=True)
    )


def shared_prefix_length(a: Any, b: Any) -> int:
    """How many leading layers of Keras models `a` and `b` are the same, bit for bit."""
    if tuple(a.inputs[0].shape[1:]) != tuple(b.inputs[0].shape[1:]):
        return 0
    inbound_a, inbound_b = _inbound(a), _inbound(b)
    count = 0
    for i, (la, lb) in enumerate(zip(a.layers, b.layers, strict=False)):
        if (
            type(la) is not type(lb)
            or inbound_a[i] != inbound_b[i]
            or _config(la) != _config(lb)
            or not _same_weights(la, lb)
        ):
            break
        count += 1
    return count


def _params(layers: list[Any]) -> int:
    return int(sum(int(np.prod(w.shape)) for layer in layers for w in layer.weights))


def _closed(model: Any, length: int) -> bool:
    """True when nothing in the first `length` layers is fed by a layer after them."""
    return all(p < length for parents in _inbound(model)[:length] for p in parents)


def find_shared_trunks(
    models: list[LoadedModel], min_share: float = MIN_TRUNK_SHARE
) -> list[SharedTrunk]:
    """Groups of models that share a trunk worth fusing; each model in one group at most.

    A group is built around its first model: every later model whose shared prefix with
    it carries at least `min_share` of both models' parameters joins, and the trunk is the
    shortest of those prefixes (so it is common to all members).
    """
    groups: list[SharedTrunk] = []
    taken: set[int] = set()
    for i, host in enumerate(models):
        if i in taken or not _is_functional(host.model):
            continue
        members, length = [host], len(host.model.layers)
        for j in range(i + 1, len(models)):
            other = models[j]
            if j in taken or not _is_functional(other.model):
                continue
            if is_tf_keras_model(other.model) != is_tf_keras_model(host.model):
                continue  # one fused graph is built by one Keras
            prefix = shared_prefix_length(host.model, other.model)
            if prefix == 0 or prefix >= min(len(host.model.layers), len(other.model.layers)):
                continue  # nothing shared, or the same model twice: nothing to fuse
            shared = _params(host.model.layers[:prefix])
            smallest = min(_params(host.model.layers), _params(other.model.layers))
            if shared < min_share * max(1, smallest):
                continue
            members.append(other)
            length = min(length, prefix)
            taken.add(j)
        if len(members) < 2:
            continue
        while length > 0 and not _closed(host.model, length):
            length -= 1
        if length == 0:
            continue
        taken.add(i)
        groups.append(
            SharedTrunk(
                models=members,
                layers=length,
                first_unshared=host.model.layers[length].name,
                last_shared=host.model.layers[length - 1].name,
                shared_params=_params(host.model.layers[:length]),
                params=[_params(m.model.layers) for m in members],
            )
        )
    return groups


def _is_functional(model: Any) -> bool:
    """A graph model whose layers can be cut (Functional; Sequential models are too)."""
    return hasattr(model, "layers") and bool(model.layers) and hasattr(model, "inputs")


def _frontier(model: Any, length: int) -> list[Any]:
    """The trunk's output tensors that the rest of `model` (or its output) uses."""
    inbound = _inbound(model)
    used: list[int] = []
    for i in range(length, len(model.layers)):
        used += [p for p in inbound[i] if p < length]
    for output in model.outputs:
        history = getattr(output, "_keras_history", None)
        if history is not None:
            position = [id(la) for la in model.layers].index(id(history[0]))
            if position < length:
                used.append(position)
    tensors = []
    for position in dict.fromkeys(used):
        tensors.append(model.layers[position].output)
    return tensors


def build_fused_model(trunk: SharedTrunk) -> Any:
    """One Keras model: the first model's trunk, then each model's own layers; a dict of
    outputs keyed by model name."""
    host = trunk.models[0].model
    if is_tf_keras_model(host):
        import tf_keras as keras
    else:
        import keras

    image = keras.Input(tuple(host.inputs[0].shape[1:]), name="image")
    host_frontier = _frontier(host, trunk.layers)
    trunk_model = keras.Model(host.inputs, host_frontier, name="shared_trunk")
    features = trunk_model(image)
    features = features if isinstance(features, list) else [features]
    outputs = {}
    for index, loaded in enumerate(trunk.models):
        model = loaded.model
        frontier = _frontier(model, trunk.layers)
        positions = [_position(model, t) for t in frontier]
        host_positions = [_position(host, t) for t in host_frontier]
        inputs = [features[host_positions.index(p)] for p in positions]
        tail = keras.Model(frontier, model.outputs[0], name=f"tail_{index}")
        outputs[loaded.name] = tail(inputs if len(inputs) > 1 else inputs[0])
    return keras.Model(image, outputs, name="fused")


def _position(model: Any, tensor: Any) -> int:
    layer = tensor._keras_history[0]  # noqa: SLF001 - Keras' own record of the producer
    return [id(la) for la in model.layers].index(id(layer))


def export_fused(model: Any, folder: Path, input_shape: tuple[int, int, int]) -> Path:
    """The fused model as a SavedModel with a static batch of 1 (see export_saved_model)."""
    from hemiface.convert.tflite_convert import export_saved_model

    return export_saved_model(model, folder, input_shape)
