"""Fused artifacts at run time: one interpreter that gives several models' probabilities.

convert writes a fused artifact when models share their leading layers bit for bit (a
fine-tuned sibling of a frozen backbone): the shared trunk runs once, each model's own
layers after it, one output per model. `choose_fused` picks, for the models asked for,
the fused artifacts of the chosen format that passed convert's gates; `FusedRunner` runs
one and hands back the dequantized probability of each model it serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.runtime.backends import Backend, default_num_threads, resolve_backend
from hemiface.runtime.errors import ManifestError
from hemiface.runtime.manifest import FusedEntry, Manifest, ModelEntry, read_verified_model


def choose_fused(manifest: Manifest, names: Sequence[str], fmt: str) -> list[FusedEntry]:
    """Fused artifacts of `fmt` that passed, serve only models in `names`, and do not
    overlap; those serving the most models first."""
    wanted = set(names)
    chosen: list[FusedEntry] = []
    covered: set[str] = set()
    candidates = [
        f
        for f in manifest.fused
        if f.format == fmt and f.passed and len(f.models) > 1 and set(f.models) <= wanted
    ]
    for fused in sorted(candidates, key=lambda f: -len(f.models)):
        if covered.isdisjoint(fused.models):
            chosen.append(fused)
            covered.update(fused.models)
    return chosen


def pixel_feed(detail: dict[str, Any], scale: float, offset: float) -> str | None:
    """How uint8 pixels can be fed to this input without arithmetic, when exactly possible.

    A full-int8 model calibrated on [0, 1] inputs has input scale 1/255 and zero point 0
    (uint8) or -128 (int8): quantize(pixel / 255) is the pixel itself ("uint8") or the
    pixel minus 128, which is the pixel with its top bit flipped, read as int8 ("int8").
    None when the input needs the float path.
    """
    dtype = detail["dtype"]
    if dtype not in (np.uint8, np.int8):
        return None
    q_scale, zero_point = detail["quantization"]
    wanted_zero = 0 if dtype == np.uint8 else -128
    exact = (
        q_scale > 0
        and zero_point == wanted_zero
        and abs(scale / q_scale - 1.0) < 1e-6
        and abs(offset / q_scale + zero_point - wanted_zero) < 1e-6
    )
    if not exact:
        return None
    return "uint8" if dtype == np.uint8 else "int8"


def feed_pixels(pixels: np.ndarray, kind: str) -> np.ndarray:
    """uint8 pixels as the input tensor `pixel_feed` said they can be."""
    if kind == "uint8":
        return pixels
    flipped: np.ndarray = np.bitwise_xor(pixels, np.uint8(0x80))
    return flipped.view(np.int8)


def quantize(tensor: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """A float tensor as the input's dtype (affine quantization when it is an integer)."""
    dtype = detail["dtype"]
    if dtype == np.float32:
        return tensor.astype(np.float32, copy=False)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    quantized: np.ndarray = np.clip(np.round(tensor / scale + zero_point), info.min, info.max)
    return quantized.astype(dtype)


def dequantize(raw: np.ndarray, detail: dict[str, Any]) -> float:
    """The first value of an output tensor as a real number."""
    value = raw.reshape(-1)[0]
    if raw.dtype == np.float32:
        return float(value)
    scale, zero_point = detail["quantization"]
    return float((float(value) - zero_point) * scale)


@dataclass
class FusedRunner:
    """One fused artifact loaded in an interpreter, with the entries of the models it serves."""

    entry: FusedEntry
    interpreter: Any
    models: list[ModelEntry]  # in the order of entry.outputs
    num_threads: int
    _outputs: list[dict[str, Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._input = self.interpreter.get_input_details()[0]
        details = self.interpreter.get_output_details()
        if any(not 0 <= o.index < len(details) for o in self.entry.outputs):
            raise ValueError(
                f"{self.entry.file}: the manifest names an output the artifact does not have"
            )
        self._outputs = [details[o.index] for o in self.entry.outputs]
        spec = self.entry.preprocessing
        self.pixels = pixel_feed(self._input, spec.scale, spec.offset)

    @classmethod
    def open(
        cls,
        folder: Path,
        entry: FusedEntry,
        models: list[ModelEntry],
        backend: Backend | None = None,
        num_threads: int | None = None,
    ) -> FusedRunner:
        """Checksum the file, then load it into an interpreter."""
        content = read_verified_model(Path(folder), entry)
        backend = backend or resolve_backend()
        threads = num_threads or default_num_threads()
        path = Path(folder) / entry.file
        try:
            return cls(entry, backend.make_interpreter(content, threads), models, threads)
        except (ValueError, RuntimeError, IndexError, KeyError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise ManifestError(
                f"{path}: {backend.label} cannot load this fused artifact ({first})"
            ) from None

    def run(self, tensor: np.ndarray) -> list[float]:
        """P(positive label) of each served model for one preprocessed float tensor."""
        self.interpreter.set_tensor(self._input["index"], quantize(tensor, self._input))
        return self._invoke()

    def run_pixels(self, pixels: np.ndarray) -> list[float]:
        """The same from resized uint8 pixels (only when `pixels` is set)."""
        assert self.pixels is not None
        self.interpreter.set_tensor(self._input["index"], feed_pixels(pixels, self.pixels))
        return self._invoke()

    def _invoke(self) -> list[float]:
        self.interpreter.invoke()
        return [dequantize(self.interpreter.get_tensor(d["index"]), d) for d in self._outputs]
