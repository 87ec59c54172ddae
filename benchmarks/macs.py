"""Multiply-accumulate counts (MACs) of one image through a model.

Counted for the layers that do nearly all the arithmetic: Conv2D, DepthwiseConv2D and
Dense (Keras), CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED (TFLite). Both counters
give the same number for the same network; biases, activations and pooling are left out.
The TFLite counter reads the interpreter's op list and tensor shapes, so it needs no
TensorFlow and works on every format (float16 and int8 graphs keep the same shapes).
"""

from __future__ import annotations

import math
from typing import Any

TFLITE_MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def macs_from_tflite(interpreter: Any) -> int:
    """MACs of one invoke, from an allocated interpreter's ops and tensor shapes."""
    shapes = {t["index"]: [int(d) for d in t["shape"]] for t in interpreter.get_tensor_details()}
    total = 0
    for op in interpreter._get_ops_details():  # noqa: SLF001 - the only op-level view
        name = op["op_name"]
        if name not in TFLITE_MAC_OPS:
            continue
        inputs = [shapes.get(i) for i in op["inputs"]]
        output = shapes.get(op["outputs"][0])
        if len(inputs) < 2 or inputs[0] is None or inputs[1] is None or output is None:
            continue
        data, weights = inputs[0], inputs[1]
        if name == "CONV_2D":
            # weights [out_c, kh, kw, in_c / groups]; output [1, oh, ow, out_c]
            total += math.prod(output) * math.prod(weights[1:])
        elif name == "DEPTHWISE_CONV_2D":
            # weights [1, kh, kw, out_c]; each output value sums kh * kw products
            total += math.prod(output) * weights[1] * weights[2]
        else:
            # weights [units, in]; one row of `in` products per output value
            total += math.prod(output) * weights[-1]
        del data
    return int(total)


def macs_from_keras(model: Any) -> int:
    """MACs of one image through a Keras model (nested models are walked)."""
    total = 0
    for layer in _leaf_layers(model):
        kind = type(layer).__name__
        if kind not in ("Conv2D", "DepthwiseConv2D", "Dense", "SeparableConv2D"):
            continue
        out_shape = _shape(layer.output)
        in_shape = _shape(layer.input)
        if out_shape is None or in_shape is None:
            continue
        out_values = math.prod(out_shape[1:])
        if kind == "Conv2D":
            kh, kw = layer.kernel_size
            total += out_values * kh * kw * (in_shape[-1] // getattr(layer, "groups", 1))
        elif kind == "DepthwiseConv2D":
            kh, kw = layer.kernel_size
            total += out_values * kh * kw
        elif kind == "SeparableConv2D":
            kh, kw = layer.kernel_size
            spatial = math.prod(out_shape[1:-1])
            depthwise_c = in_shape[-1] * layer.depth_multiplier
            total += spatial * depthwise_c * kh * kw + out_values * depthwise_c
        else:
            total += out_values * in_shape[-1]
    return int(total)


def _leaf_layers(model: Any) -> list[Any]:
    leaves = []
    for layer in getattr(model, "layers", []):
        if hasattr(layer, "layers") and layer.layers:
            leaves.extend(_leaf_layers(layer))
        else:
            leaves.append(layer)
    return leaves


def _shape(tensor: Any) -> list[int] | None:
    try:
        shape = list(tensor.shape)
    except (AttributeError, ValueError):
        return None
    if any(d is None for d in shape[1:]):
        return None
    return [1] + [int(d) for d in shape[1:]]
