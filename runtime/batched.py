"""Many images through one artifact: batched invokes on fresh single-thread interpreters.

The live runtime invokes one image at a time; perturbation explanations (occlusion, RISE)
need hundreds of forward passes of one image's variants. `BatchedInterpreter` resizes the
artifact's input to a batch (LiteRT re-plans the graph once) and hands back the dequantized
output of every model the artifact serves, one row per image: a fused artifact answers for
all its models in one invoke. An artifact whose input cannot be resized runs a batch of one.

`ArtifactPool` keeps one set of interpreters per worker (LiteRT's invoke releases the GIL, so
threads use every core) and splits each call's images across them, one share a worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hemiface.core.quiet import quiet_fds
from hemiface.runtime.backends import Backend
from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.fused import quantize


@dataclass(frozen=True)
class ArtifactSource:
    """One artifact's checksummed bytes and which outputs answer for which models."""

    file: str  # for error messages
    content: bytes = field(repr=False)
    output_indices: list[int]  # output tensor positions, in the order of `models`
    models: list[str]  # model names this artifact serves


class BatchedInterpreter:
    """One interpreter of one artifact whose input takes `batch` images at once."""

    def __init__(self, source: ArtifactSource, backend: Backend, batch: int) -> None:
        self.source = source
        self.interpreter = self._single(backend)
        self.batch = 1
        self._bind()
        if batch > 1:
            single = self.interpreter
            try:
                self.interpreter = self._single(backend, allocate=False)
                detail = self.interpreter.get_input_details()[0]
                shape = [batch, *[int(v) for v in detail["shape"][1:]]]
                self.interpreter.resize_tensor_input(detail["index"], shape)
                self.interpreter.allocate_tensors()
                self.batch = batch
                self._bind()
                batched_ok = self._agrees_with(single)
            except (ValueError, RuntimeError, HemifaceError):
                batched_ok = False
            if not batched_ok:
                # A graph fixed to one image (e.g. a RESHAPE to a constant [1, n]) fails or,
                # worse, mixes the images of a batch: then one image an invoke.
                self.interpreter, self.batch = single, 1
                self._bind()

    def _single(self, backend: Backend, allocate: bool = True) -> Any:
        interpreter = backend.interpreter_class(model_content=self.source.content, num_threads=1)
        if allocate:
            interpreter.allocate_tensors()
        return interpreter

    def _bind(self) -> None:
        self._input = self.interpreter.get_input_details()[0]
        details = self.interpreter.get_output_details()
        self._outputs = [details[i] for i in self.source.output_indices]

    def _agrees_with(self, single: Any) -> bool:
        """Do batched invokes give each image the answer a batch of one gives it?"""
        shape = [int(v) for v in self._input["shape"]]
        probe = np.random.default_rng(0).uniform(0.0, 1.0, shape).astype(np.float32)
        batched = self.run(probe)
        detail = single.get_input_details()[0]
        outputs = single.get_output_details()
        scales = [float(outputs[i]["quantization"][0]) for i in self.source.output_indices]
        tolerance = 1e-4 + 1.01 * max(scales)  # one quantum of a quantized output
        for row, image in zip(batched, probe, strict=True):
            single.set_tensor(detail["index"], quantize(image[None], detail))
            single.invoke()
            alone = [_dequantize(single.get_tensor(outputs[i]["index"]), outputs[i])[0]
                     for i in self.source.output_indices]  # fmt: skip
            if np.max(np.abs(row - np.asarray(alone))) > tolerance:
                return False
        return True

    def run(self, images: np.ndarray) -> np.ndarray:
        """(N, len(models)) dequantized outputs for N preprocessed float images."""
        rows = []
        for start in range(0, len(images), self.batch):
            part = images[start : start + self.batch]
            count = len(part)
            if count < self.batch:  # pad the last batch; its extra rows are dropped
                padding = np.repeat(part[-1:], self.batch - count, axis=0)
                part = np.concatenate([part, padding])
            self.interpreter.set_tensor(self._input["index"], quantize(part, self._input))
            try:
                self.interpreter.invoke()
            except (RuntimeError, ValueError) as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise HemifaceError(
                    f"{self.source.file}: the interpreter failed ({first})"
                ) from None
            columns = [
                _dequantize(self.interpreter.get_tensor(d["index"]), d) for d in self._outputs
            ]
            rows.append(np.stack(columns, axis=1)[:count])
        return np.concatenate(rows) if rows else np.zeros((0, len(self._outputs)))


def _dequantize(raw: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """One value per image of a (batch, ...) output tensor, as float64."""
    values = raw.reshape(raw.shape[0], -1)[:, 0]
    if raw.dtype == np.float32:
        return values.astype(np.float64)
    scale, zero_point = detail["quantization"]
    real: np.ndarray = (values.astype(np.float64) - zero_point) * scale
    return real


class ArtifactPool:
    """Probabilities of several models from their artifacts, on `workers` threads.

    Each worker has its own interpreter of every artifact (an interpreter is not safe to
    share between threads), made up front so that the interpreter's log lines can be kept
    off the terminal, and runs its share of the images through all of them.
    `probabilities` returns columns in the order of `names`.
    """

    def __init__(
        self,
        sources: Sequence[ArtifactSource],
        backend: Backend,
        names: Sequence[str],
        workers: int = 1,
        batch: int = 8,
    ) -> None:
        self.sources = list(sources)
        self.backend = backend
        self.names = list(names)
        self.workers = max(1, int(workers))
        self.batch = max(1, int(batch))
        served = [m for s in self.sources for m in s.models]
        if sorted(served) != sorted(self.names):
            raise HemifaceError(f"the artifacts serve {served}, not the models {self.names}")
        self._columns = [[self.names.index(m) for m in s.models] for s in self.sources]
        with quiet_fds(2):  # LiteRT logs its delegate on stderr, once an interpreter
            self._sets = [
                [BatchedInterpreter(s, backend, self.batch) for s in self.sources]
                for _ in range(self.workers)
            ]
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="hemiface-explain")

    def _run_share(self, worker: int, images: np.ndarray) -> np.ndarray:
        result = np.empty((len(images), len(self.names)), dtype=np.float64)
        for interpreter, columns in zip(self._sets[worker], self._columns, strict=True):
            result[:, columns] = interpreter.run(images)
        return result

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, models) probabilities for N preprocessed float images (N, H, W, 3)."""
        images = np.asarray(images, dtype=np.float32)
        if len(images) == 0:
            return np.zeros((0, len(self.names)))
        # Whole batches per worker, as even as they come.
        per_worker = -(-len(images) // self.workers)
        per_worker = -(-per_worker // self.batch) * self.batch
        shares = [images[i : i + per_worker] for i in range(0, len(images), per_worker)]
        futures = [
            self._pool.submit(self._run_share, worker, share) for worker, share in enumerate(shares)
        ]
        return np.concatenate([f.result() for f in futures])

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> ArtifactPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
