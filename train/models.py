"""The three architectures (needs TensorFlow/Keras; import lazily).

- Base: MobileNetV2 (alpha 1.0, 224x224x3) frozen, global average pooling, dropout,
  Dense(1, sigmoid). The model takes [0, 1] pixels (the notebook's img_to_array / 255);
  a Rescaling layer maps them to MobileNetV2's [-1, 1] (a plain layer, not a Lambda, so
  the files reload with safe_mode=True).
- Fine-tuned: the same graph with the upper layers trainable.
- CNN: stacked Conv2D/MaxPool blocks, Flatten, Dense, Dropout, Dense(1, sigmoid).

The backbone's layers are built flat into the model (MobileNetV2(input_tensor=...)), so
the model can be split at `CUT_LAYER` into a frozen lower part whose activations are
computed once and cached, and an upper part that trains on them.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from hemiface.kerasio import quiet_tensorflow  # noqa: E402

quiet_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from hemiface.core.errors import HemifaceError, one_line  # noqa: E402
from hemiface.kerasio import load_keras_model  # noqa: E402

log = logging.getLogger("hemiface.train")

# Output of the second-to-last inverted-residual block: everything above it (block 16,
# the final 1x1 conv, the head) depends on this one tensor, so the model splits here.
CUT_LAYER = "block_15_add"
HEAD_LAYERS = ("global_pool", "dropout", "droop_side")


@dataclass(frozen=True)
class BackboneWeights:
    """Where a MobileNetV2 backbone's weights came from."""

    pretrained: bool  # False: random init, nothing learned to preserve
    description: str  # e.g. "imagenet", "random init (--weights none)", "file PATH"


def load_backbone(weights: str, input_size: int = 224, alpha: float = 1.0,
                  input_tensor: object = None) -> tuple[keras.Model, BackboneWeights]:  # fmt: skip
    """MobileNetV2 without its top, and where its weights came from.

    weights: "imagenet" (falls back to random init, explicitly, when Keras cannot fetch
    them: no network here), "none" (random init) or a path to a weights file.
    """
    shape = (input_size, input_size, 3)
    common = dict(include_top=False, alpha=alpha, input_shape=shape, input_tensor=input_tensor)
    if weights.lower() == "none":
        return keras.applications.MobileNetV2(weights=None, **common), BackboneWeights(
            False, "random init (--weights none)"
        )
    if weights.lower() == "imagenet":
        try:
            # Keras prints "Downloading data from ..." on stdout: keep the terminal clean.
            with contextlib.redirect_stdout(io.StringIO()):
                model = keras.applications.MobileNetV2(weights="imagenet", **common)
            return model, BackboneWeights(True, "imagenet")
        except Exception as exc:  # noqa: BLE001 - any fetch/cache failure means: no weights
            text = str(exc).strip()
            # "URL fetch failure on https://...: [Errno -2] ..." -> "URL fetch failure"
            reason = text.splitlines()[0].split(" on http")[0][:160] if text else type(exc).__name__
            log.warning("ImageNet weights unavailable (%s): falling back to random init", reason)
            model = keras.applications.MobileNetV2(weights=None, **common)
            return model, BackboneWeights(
                False, f"random init (ImageNet weights unavailable: {reason})"
            )
    path = Path(weights)
    if not path.is_file():
        raise HemifaceError(f"{path}: no such weights file (--weights imagenet|none|PATH)")
    model = keras.applications.MobileNetV2(weights=None, **common)
    try:
        model.load_weights(str(path), skip_mismatch=False)
    except Exception as exc:  # noqa: BLE001 - report any loader failure in one line
        raise HemifaceError(
            f"{path}: not MobileNetV2 (alpha {alpha}, no top) weights Keras can load ({exc})"
        ) from None
    return model, BackboneWeights(True, f"file {path}")


def make_base_model(weights: str = "imagenet", input_size: int = 224,
                    alpha: float = 1.0) -> tuple[keras.Model, BackboneWeights]:  # fmt: skip
    """The base model (backbone frozen) and where its backbone's weights came from."""
    inputs = keras.Input((input_size, input_size, 3), name="image")
    scaled = keras.layers.Rescaling(2.0, offset=-1.0, name="to_minus1_1")(inputs)
    backbone, source = load_backbone(weights, input_size, alpha, input_tensor=scaled)
    pooled = keras.layers.GlobalAveragePooling2D(name="global_pool")(backbone.output)
    dropped = keras.layers.Dropout(0.2, name="dropout")(pooled)
    output = keras.layers.Dense(1, activation="sigmoid", name="droop_side")(dropped)
    model = keras.Model(inputs, output, name="mobilenetv2_base_model")
    freeze_backbone(model)
    return model, source


def build_base_model(weights: str = "imagenet", input_size: int = 224,
                     alpha: float = 1.0) -> keras.Model:  # fmt: skip
    """MobileNetV2 backbone (frozen), global pooling, dropout, Dense(1, sigmoid)."""
    return make_base_model(weights, input_size, alpha)[0]


def freeze_backbone(model: keras.Model) -> None:
    for layer in model.layers:
        layer.trainable = layer.name in HEAD_LAYERS


def unfreeze_upper(model: keras.Model, first_layer: str,
                   batchnorm_momentum: float | None = None) -> int:  # fmt: skip
    """Make `first_layer` and everything after it trainable. BatchNormalization stays
    frozen (inference mode, as Keras' transfer-learning guide advises for pretrained
    weights) unless `batchnorm_momentum` is given: then those BatchNormalization layers
    train too (batch statistics) with that moving-average momentum. Returns the number of
    layers with trainable weights."""
    names = [layer.name for layer in model.layers]
    if first_layer not in names:
        raise HemifaceError(f"fine-tuning: the model has no layer named {first_layer!r}")
    start = names.index(first_layer)
    for index, layer in enumerate(model.layers):
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = index >= start and (not is_bn or batchnorm_momentum is not None)
        if is_bn and layer.trainable:
            layer.momentum = batchnorm_momentum
    return sum(1 for layer in model.layers if layer.trainable and layer.weights)


def calibrate_batchnorm(model: keras.Model, images: np.ndarray) -> None:
    """Set every BatchNormalization's moving statistics from one batch (data-dependent
    init). A randomly initialised backbone keeps mean 0 / variance 1 otherwise, and its
    frozen activations then drift far from unit scale through 50-odd layers."""
    layers = [la for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]
    saved = [(la.momentum, la.trainable) for la in layers]
    for la in layers:
        la.momentum, la.trainable = 0.0, True
    model(images.astype(np.float32) / 255.0, training=True)
    for la, (momentum, trainable) in zip(layers, saved, strict=True):
        la.momentum, la.trainable = momentum, trainable


def split_model(model: keras.Model, cut: str = CUT_LAYER) -> tuple[keras.Model, keras.Model]:
    """(lower, upper): lower maps images to the cut activations, upper maps those on."""
    tensor = model.get_layer(cut).output
    return keras.Model(model.input, tensor), keras.Model(tensor, model.output)


def pooled_and_head(model: keras.Model, cut: str = CUT_LAYER) -> tuple[keras.Model, keras.Model]:
    """(pooled, head): pooled maps the cut activations to the global-pool vector, head maps
    that vector through dropout and Dense (sharing the model's layers): the frozen-backbone
    base model trains its head on pooled vectors computed once."""
    pool = model.get_layer(HEAD_LAYERS[0]).output
    vector = keras.Input(tuple(pool.shape[1:]), name="pooled")
    output = model.get_layer(HEAD_LAYERS[2])(model.get_layer(HEAD_LAYERS[1])(vector))
    return keras.Model(model.get_layer(cut).output, pool), keras.Model(vector, output)


def build_cnn(input_size: int = 224) -> keras.Model:
    """Custom CNN in the notebook's style: Conv2D/MaxPool blocks, Flatten, Dense, Dropout,
    Dense(1, sigmoid). A 4x4 stride-4 first conv and BatchNormalization after each conv
    keep it quick to train on a CPU (~14 M multiply-adds per 224x224 image)."""
    layers = keras.layers
    stack: list[object] = [keras.Input((input_size, input_size, 3), name="image")]
    for index, (filters, kernel, stride) in enumerate(
        ((16, 4, 4), (32, 3, 1), (64, 3, 1), (128, 3, 1)), start=1
    ):
        stack += [
            layers.Conv2D(
                filters, kernel, strides=stride, padding="same", use_bias=False, name=f"conv{index}"
            ),  # fmt: skip
            layers.BatchNormalization(name=f"bn{index}"),
            layers.ReLU(name=f"relu{index}"),
        ]
        if index < 4:
            stack.append(layers.MaxPooling2D(name=f"pool{index}"))
    stack += [
        layers.Flatten(name="flatten"),
        layers.Dense(64, activation="relu", name="dense"),
        layers.Dropout(0.5, name="dropout"),
        layers.Dense(1, activation="sigmoid", name="droop_side"),
    ]
    return keras.Sequential(stack, name="cnn_stroke_model")


def check_model_file(path: Path, input_size: int) -> str | None:
    """None if `path` reloads with safe_mode=True and has the expected shapes, else why not."""
    try:
        model = load_keras_model(path).model
    except Exception as exc:  # noqa: BLE001 - any load failure makes the file invalid
        return f"does not load ({type(exc).__name__}: {one_line(exc)})"
    expected_in = (None, input_size, input_size, 3)
    if tuple(model.input_shape) != expected_in or tuple(model.output_shape) != (None, 1):
        return (
            f"shapes {model.input_shape} -> {model.output_shape}, "
            f"expected {expected_in} -> (None, 1)"
        )
    return None
