"""One TFLite laterality model: float input in, P(positive label) out.

Quantized inputs and outputs are handled here, so callers always deal in the real
values: the input tensor as preprocessing makes it, and a dequantized probability. A
full-int8 sigmoid output has 256 levels (scale 1/256); it is compared with the threshold
only after dequantizing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.runtime.backends import Backend, default_num_threads, resolve_backend
from hemiface.runtime.errors import ManifestError
from hemiface.runtime.manifest import ModelEntry, read_verified_model

NUMERIC_DTYPES = (np.float32, np.uint8, np.int8)


@dataclass
class TFLiteClassifier:
    entry: ModelEntry
    interpreter: Any
    backend: Backend
    num_threads: int

    @classmethod
    def open(
        cls,
        folder: Path,
        entry: ModelEntry,
        backend: Backend | None = None,
        num_threads: int | None = None,
    ) -> TFLiteClassifier:
        """Checksum the model file, then load it into an interpreter.

        A file that matches its checksum but that the interpreter refuses, or whose input
        does not fit the manifest's preprocessing, raises ManifestError naming the file.
        """
        content = read_verified_model(Path(folder), entry)
        backend = backend or resolve_backend()
        threads = num_threads or default_num_threads()
        path = Path(folder) / entry.file
        try:
            interpreter = backend.make_interpreter(content, threads)
        except (ValueError, RuntimeError) as exc:
            raise ManifestError(
                f"{path}: {backend.label} cannot load this model ({_first_line(exc)})"
            ) from None
        problem = _io_problem(entry, interpreter)
        if problem is not None:
            raise ManifestError(f"{path}: {problem}")
        return cls(entry, interpreter, backend, threads)

    def __post_init__(self) -> None:
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]

    def quantize_input(self, tensor: np.ndarray) -> np.ndarray:
        dtype = self._input["dtype"]
        if dtype == np.float32:
            return tensor.astype(np.float32, copy=False)
        scale, zero_point = self._input["quantization"]
        info = np.iinfo(dtype)
        quantized: np.ndarray = np.clip(np.round(tensor / scale + zero_point), info.min, info.max)
        return quantized.astype(dtype)

    def dequantize_output(self, raw: np.ndarray) -> np.ndarray:
        if raw.dtype == np.float32:
            return raw.astype(np.float32)
        scale, zero_point = self._output["quantization"]
        probabilities: np.ndarray = (raw.astype(np.float32) - zero_point) * scale
        return probabilities.astype(np.float32)

    def predict_one(self, tensor: np.ndarray) -> float:
        """P(positive label) for one preprocessed (1, H, W, 3) float tensor."""
        self.interpreter.set_tensor(self._input["index"], self.quantize_input(tensor))
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self._output["index"])
        return float(self.dequantize_output(raw).reshape(-1)[0])

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """P(positive label) for each image of an (N, H, W, 3) batch, one invoke each."""
        return np.array([self.predict_one(batch[i : i + 1]) for i in range(len(batch))])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _io_problem(entry: ModelEntry, interpreter: Any) -> str | None:
    """Why this interpreter cannot be the laterality model the manifest describes, or None."""
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or not outputs:
        return f"expected one image input and a probability output, found {len(inputs)} input(s)"
    shape = [int(v) for v in inputs[0]["shape"]]
    spec = entry.preprocessing
    if shape != [1, spec.height, spec.width, 3]:
        return (
            f"the model's input is {shape}, the manifest's preprocessing makes "
            f"[1, {spec.height}, {spec.width}, 3]"
        )
    for role, detail in (("input", inputs[0]), ("output", outputs[0])):
        if detail["dtype"] not in NUMERIC_DTYPES:
            return f"{role} type {np.dtype(detail['dtype']).name} is not float32, uint8 or int8"
        scale = detail["quantization"][0]
        if detail["dtype"] != np.float32 and not scale > 0:
            return f"the quantized {role} has no quantization scale"
    if int(np.prod(outputs[0]["shape"])) < 1:
        return "the model's output is empty"
    return None
