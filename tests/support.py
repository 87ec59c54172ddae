"""Helpers the test areas share: model sets made of real or stand-in TFLite files.

Importable from any test or conftest as `import support` (pyproject puts tests/ on the
path). Heavy imports (TensorFlow, the interpreter) stay inside the functions.

- `tflite_bytes`: a SavedModel converted to float32, or to full int8 with uint8 input
  and output, by the real TFLiteConverter;
- `tensor_specs`: the manifest's input and output TensorSpec of a .tflite file's bytes,
  read by the interpreter;
- `fake_model_set`: a one-entry model set whose "model" is a few bytes with the right
  sha256, for tests of the manifest itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.runtime.manifest import (
    Manifest,
    ModelEntry,
    Quantization,
    TensorSpec,
    save_manifest,
)

Representative = Callable[[], Iterable[list[np.ndarray]]]


def tflite_bytes(
    saved_model: Path, fmt: str, representative: Representative | None = None
) -> bytes:
    """Convert a SavedModel folder: "float32", or "int8" (full integer, uint8 I/O,
    calibrated on `representative()`, which yields [batch-of-one] lists)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if fmt == "int8":
        if representative is None:
            raise ValueError("int8 needs representative data")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    elif fmt != "float32":
        raise ValueError(f"tflite_bytes makes float32 or int8, not {fmt}")
    content: bytes = converter.convert()
    return content


def _spec(detail: dict[str, Any]) -> TensorSpec:
    scale, zero_point = detail["quantization"]
    quant = Quantization(float(scale), int(zero_point)) if scale else None
    return TensorSpec([int(d) for d in detail["shape"]], np.dtype(detail["dtype"]).name, quant)


def tensor_specs(content: bytes) -> tuple[TensorSpec, TensorSpec]:
    """(input, output) of a single-input, single-output .tflite model."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    return (
        _spec(interpreter.get_input_details()[0]),
        _spec(interpreter.get_output_details()[0]),
    )


def fake_model_set(
    folder: Path, content: bytes = b"TFL3 fake model bytes", **fields: Any
) -> Manifest:
    """A model set of one int8 CNN entry whose file holds `content` (not a real model);
    `fields` override the entry's."""
    (folder / "cnn.int8.tflite").write_bytes(content)
    values: dict[str, Any] = {
        "name": "cnn_stroke_model",
        "title": "CNN",
        "format": "int8",
        "file": "cnn.int8.tflite",
        "sha256": hashlib.sha256(content).hexdigest(),
        "size_bytes": len(content),
        "input": TensorSpec([1, 224, 224, 3], "uint8", Quantization(1 / 255, 0)),
        "output": TensorSpec([1, 1], "uint8", Quantization(1 / 256, 0)),
        **fields,
    }
    manifest = Manifest(models=[ModelEntry(**values)])
    save_manifest(manifest, folder)
    return manifest


def default_sigint() -> None:
    """`preexec_fn` for a child that a test stops with SIGINT, as Ctrl-C at a terminal does.

    A process started in the background by a shell without job control inherits SIGINT
    ignored, and Python then installs no KeyboardInterrupt handler: the child would not
    stop. Restoring the default lets the child's Python install it, whoever started pytest.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def read_mjpeg_part(url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> bytes:
    """The first JPEG of a multipart/x-mixed-replace stream (read with the stdlib only)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        assert response.status == 200, response.status
        kind = response.getheader("Content-Type", "")
        assert kind.startswith("multipart/x-mixed-replace; boundary="), kind
        boundary = kind.split("boundary=", 1)[1]
        assert response.fp.readline().strip() == f"--{boundary}".encode()
        length = None
        while (line := response.fp.readline().strip()) != b"":
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        assert length is not None
        jpeg: bytes = response.fp.read(length)
        return jpeg
    finally:
        connection.close()
