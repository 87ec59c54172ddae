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
from hemiface.runtime.manifest import ModelEntry, read_verified_model


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
        """Checksum the model file, then load it into an interpreter."""
        content = read_verified_model(Path(folder), entry)
        backend = backend or resolve_backend()
        threads = num_threads or default_num_threads()
        return cls(entry, backend.make_interpreter(content, threads), backend, threads)

    def __post_init__(self) -> None:
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]

    def quantize_input(self, tensor: np.ndarray) -> np.ndarray:
        dtype = self._input["dtype"]
        if dtype == np.float32:
            return tensor.astype(np.float32, copy=False)
        scale, zero_point = self._input["quantization"]
        info = np.iinfo(dtype)
        quantized = np.round(tensor / scale + zero_point)
        return np.clip(quantized, info.min, info.max).astype(dtype)

    def dequantize_output(self, raw: np.ndarray) -> np.ndarray:
        if raw.dtype == np.float32:
            return raw.astype(np.float32)
        scale, zero_point = self._output["quantization"]
        return ((raw.astype(np.float32) - zero_point) * scale).astype(np.float32)

    def predict_one(self, tensor: np.ndarray) -> float:
        """P(positive label) for one preprocessed (1, H, W, 3) float tensor."""
        self.interpreter.set_tensor(self._input["index"], self.quantize_input(tensor))
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self._output["index"])
        return float(self.dequantize_output(raw).reshape(-1)[0])

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """P(positive label) for each image of an (N, H, W, 3) batch, one invoke each."""
        return np.array([self.predict_one(batch[i : i + 1]) for i in range(len(batch))])
