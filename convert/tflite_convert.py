"""Keras model -> SavedModel -> .tflite bytes, one format at a time, quietly.

Keras 3's supported route is `model.export(dir)` then
`TFLiteConverter.from_saved_model(dir)` (keras#19108). The converter's C++ layers write
to the process's stdout/stderr file descriptors directly (e.g. "fully_quantize: 0, ..."),
which Python-level redirection cannot catch, so `hemiface.core.quiet.quiet_fds` points
fds 1 and 2 at a temporary file while TensorFlow works, and hands the text back for error
messages.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.core.errors import HemifaceError, shorten
from hemiface.core.quiet import quiet_fds
from hemiface.kerasio import is_tf_keras_model

INT8_IO = ("uint8", "int8", "float")
STATIC_BATCH = 1


class ConversionError(HemifaceError):
    """The TFLite converter failed on a model."""


def export_saved_model(
    model: Any, folder: Path, input_shape: tuple[int, ...] | None = None
) -> Path:
    """Write the Keras model as a SavedModel (serving signature) for the TFLite converter.

    The signature takes a batch of exactly one image (`STATIC_BATCH`): with a dynamic batch
    a Flatten exports as SHAPE, STRIDED_SLICE, PACK and RESHAPE, which XNNPACK does not
    take, so the delegate splits the graph in two. The runtime feeds one image a call.
    A tf-keras (Keras 2) model goes through tf-keras' own ExportArchive, the route of its
    `export(dir)`, which prints its endpoints with print(): kept off stdout, where --json
    output goes.
    """
    shape = (STATIC_BATCH, *tuple(input_shape or model.inputs[0].shape[1:]))
    dtype = str(getattr(getattr(model.inputs[0], "dtype", None), "name", None) or "float32")
    with quiet_fds():
        if is_tf_keras_model(model):
            import tensorflow as tf
            import tf_keras

            archive = tf_keras.export.ExportArchive()
            archive.track(model)
            archive.add_endpoint("serve", model.__call__, [tf.TensorSpec(shape, dtype)])
            with contextlib.redirect_stdout(io.StringIO()):
                archive.write_out(str(folder))
        else:
            import keras

            signature = [keras.InputSpec(shape=shape, dtype=dtype)]
            model.export(
                str(folder), format="tf_saved_model", verbose=False, input_signature=signature
            )
    return Path(folder)


def make_converter(
    saved_model: Path,
    fmt: str,
    representative: np.ndarray | None = None,
    int8_io: str = "int8",
    target: str | None = None,
) -> Any:
    """A TFLiteConverter configured for one of float32, float16, dynamic, int8."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if fmt == "float32":
        return converter
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if fmt == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif fmt == "dynamic":
        if target is not None:
            # Per-channel hybrid FULLY_CONNECTED is op version 12, which needs runtime
            # 2.17+; per-tensor dense weights give version 9, which 2.14 runs. It cannot
            # help a Dense layer with one output unit: one scale counts as per-channel there.
            converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    elif fmt == "int8":
        if representative is None or len(representative) == 0:
            raise ConversionError("full int8 needs calibration images (--calib)")
        samples = representative.astype(np.float32)

        def representative_dataset() -> Iterator[list[np.ndarray]]:
            for i in range(len(samples)):
                yield [samples[i : i + 1]]

        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io != "float":
            io_type = tf.uint8 if int8_io == "uint8" else tf.int8
            converter.inference_input_type = io_type
            converter.inference_output_type = io_type
    else:
        raise ConversionError(f"unknown format {fmt!r}")
    return converter


def convert_to_tflite(
    saved_model: Path,
    fmt: str,
    representative: np.ndarray | None = None,
    int8_io: str = "int8",
    target: str | None = None,
) -> bytes:
    """The .tflite bytes of one format; ConversionError with the converter's last words."""
    if int8_io not in INT8_IO:
        raise ConversionError(f"--int8-io must be one of {', '.join(INT8_IO)}, got {int8_io!r}")
    converter = make_converter(saved_model, fmt, representative, int8_io, target)
    try:
        with quiet_fds() as captured:
            content = converter.convert()
    except Exception as exc:  # noqa: BLE001 - the converter raises many types
        last_line = ("".join(captured).strip().splitlines() or ["?"])[-1]
        reason = shorten(str(exc)) or shorten(last_line)
        raise ConversionError(f"TFLite converter failed for {fmt}: {reason}") from None
    return bytes(content)
