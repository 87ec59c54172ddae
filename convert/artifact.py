"""One source model's artifacts: convert (or reuse) each format, read its ops, load it in
every reachable interpreter, and verify it against the Keras model."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from hemiface.convert import compat
from hemiface.convert.calibration import ImageSet
from hemiface.convert.summary import ConversionRow
from hemiface.convert.tflite_convert import (
    STATIC_BATCH,
    convert_to_tflite,
    export_saved_model,
)
from hemiface.convert.verify import (
    KERAS_BATCH,
    artifact_probabilities,
    compare_with_source,
)
from hemiface.core.domain import model_title
from hemiface.core.quiet import quiet_fds
from hemiface.kerasio import LoadedModel, predict_probabilities
from hemiface.runtime.backends import Backend
from hemiface.runtime.delegation import delegation_report
from hemiface.runtime.manifest import (
    ConverterInfo,
    FusedEntry,
    Manifest,
    ModelEntry,
    Preprocessing,
    Quantization,
    SourceModel,
    TensorSpec,
)


def tensor_spec(detail: dict[str, Any]) -> TensorSpec:
    scale, zero_point = detail["quantization"]
    dtype = (
        detail["dtype"].__name__ if hasattr(detail["dtype"], "__name__") else str(detail["dtype"])
    )
    quant = Quantization(float(scale), int(zero_point)) if scale else None
    return TensorSpec([int(v) for v in detail["shape"]], str(dtype), quant)


def converter_versions(model: Any = None) -> ConverterInfo:
    """hemiface, TensorFlow and the Keras that exported `model` (tf-keras for a Keras 2 one)."""
    import tensorflow as tf

    from hemiface.core.version import __version__
    from hemiface.kerasio import keras_module_for

    keras = keras_module_for(model)
    return ConverterInfo(hemiface=__version__, tensorflow=tf.__version__, keras=keras.__version__)


class ModelWork:
    """Conversion of one source model: the SavedModel export and Keras outputs, made once."""

    def __init__(
        self,
        model: LoadedModel,
        spec: Preprocessing,
        calib_set: ImageSet | None,
        verify_set: ImageSet | None,
        workdir: Path,
        backend: Backend,
        output_index: int | None = None,
    ) -> None:
        self.model = model
        self.output_index = output_index
        self.spec = spec
        self.calib_set = calib_set
        self.verify_set = verify_set
        self.workdir = workdir
        self.backend = backend
        self.versions = converter_versions(model.model)
        self._saved_model: Path | None = None
        self._source_p: Any = None
        # Per format: the artifact's bytes and (once verified here) its probabilities on
        # the verification images, for the fused artifact's comparison with it.
        self.contents: dict[str, bytes] = {}
        self.artifact_p: dict[str, Any] = {}
        self.source_bytes = source_size(model.path)

    def saved_model(self) -> Path:
        if self._saved_model is None:
            # TensorFlow reads the variables back through a glob pattern: a name with
            # "[" or "*" in it would match nothing, so the folder gets a name without.
            digest = hashlib.sha256(self.model.name.encode("utf-8")).hexdigest()[:12]
            folder = self.workdir / f"savedmodel-{digest}"
            self._saved_model = export_saved_model(self.model.model, folder)
        return self._saved_model

    def source_probabilities(self) -> Any:
        if self._source_p is None and self.verify_set is not None:
            self._source_p = predict_probabilities(
                self.model.model, self.verify_set.tensors, KERAS_BATCH
            )
        return self._source_p

    def work_key(self, fmt: str, int8_io: str, target: str | None) -> str:
        parts = [self.model.sha256, fmt, self.versions.tensorflow, self.versions.hemiface]
        parts += [f"loader={self.model.loader} {self.versions.keras}"]
        parts += [f"output={self.output_index}", f"target={target}", f"batch={STATIC_BATCH}"]
        if fmt == "int8":
            parts += [f"io={int8_io}", self.calib_set.fingerprint() if self.calib_set else ""]
        return "|".join(parts)

    def verify_key(self, max_flip_rate: float | None) -> str:
        if self.verify_set is None:
            return "none"
        return f"{self.verify_set.fingerprint()}|{max_flip_rate}"

    def artifact(
        self,
        fmt: str,
        out: Path,
        staging: Path,
        previous: Manifest | None,
        cache: dict[str, dict[str, str]],
        int8_io: str,
        target: str | None,
        max_flip_rate: float | None,
    ) -> tuple[ModelEntry, ConversionRow]:
        name = self.model.name
        # The name in the staging folder and the cache's key; publishing may give the file
        # another name (the manifest says which), so a reused artifact keeps its own.
        file = f"{name}.{fmt}.tflite"
        key = self.work_key(fmt, int8_io, target)
        verify_key = self.verify_key(max_flip_rate)
        prev = _find_entry(previous, name, fmt)
        cached = cache.get(file, {})
        content = _reusable_content(out, prev, cached, key)
        reused = content is not None
        if reused and prev is not None:
            file = prev.file
        seconds = 0.0
        if content is None:
            start = time.perf_counter()
            representative = self.calib_set.tensors if self.calib_set is not None else None
            content = convert_to_tflite(self.saved_model(), fmt, representative, int8_io, target)
            seconds = time.perf_counter() - start
            (staging / file).write_bytes(content)
        sha = hashlib.sha256(content).hexdigest()
        report = compat.analyze_ops(content)
        with quiet_fds():
            interpreter = self.backend.make_interpreter(content, 1)
        delegation = delegation_report(interpreter)
        self.contents[fmt] = content
        entry = ModelEntry(
            name=name,
            title=model_title(name),
            format=fmt,
            file=file,
            sha256=sha,
            size_bytes=len(content),
            input=tensor_spec(interpreter.get_input_details()[0]),
            output=tensor_spec(interpreter.get_output_details()[0]),
            preprocessing=self.spec,
            source=SourceModel(
                self.model.path.name,
                self.model.sha256,
                self.model.source_format,
                self.model.loader,
            ),
            converter=self.versions,
            ops=report.ops,
            min_runtime=compat.describe_min_runtime(report),
            loads_in=compat.load_in_process(content),
            calibration=self.calib_set.description if fmt == "int8" and self.calib_set else None,
            delegate_partitions=delegation.partitions if delegation else None,
            undelegated_ops=delegation.undelegated_ops if delegation else [],
        )
        if reused and prev is not None and cached.get("verify") == verify_key:
            entry.verification = prev.verification
        elif self.verify_set is not None:
            artifact_p, latency = artifact_probabilities(
                content, entry, self.verify_set.tensors, self.backend
            )
            self.artifact_p[fmt] = artifact_p
            entry.verification = compare_with_source(
                self.source_probabilities(),
                artifact_p,
                entry.threshold,
                self.verify_set.labels,
                self.verify_set.description,
                latency,
                positive_index=entry.labels.index(entry.positive_label),
                max_flip_rate=max_flip_rate,
            )
        cache[f"{name}.{fmt}.tflite"] = {"key": key, "sha256": sha, "verify": verify_key}
        problems = []
        if target is not None:
            problem = compat.target_problem(report, target)
            if problem:
                problems.append(problem)
        if entry.verification is not None and not entry.verification.passed:
            v = entry.verification
            problems.append(
                f"{v.flips} of {v.n_images} labels flipped, over --max-flip-rate {max_flip_rate}"
            )
        row = ConversionRow(
            name=name,
            title=entry.title,
            format=fmt,
            file=file,
            sha256=sha,
            size_bytes=len(content),
            source_bytes=self.source_bytes,
            seconds=round(seconds, 3),
            reused=reused,
            min_runtime=entry.min_runtime,
            loads_in=entry.loads_in,
            verification=entry.verification,
            passed=not problems,
            problems=problems,
        )
        return entry, row


def _find_entry(manifest: Manifest | None, name: str, fmt: str) -> ModelEntry | None:
    if manifest is None:
        return None
    for entry in manifest.models:
        if entry.name == name and entry.format == fmt:
            return entry
    return None


def _reusable_content(
    out: Path, prev: ModelEntry | FusedEntry | None, cached: dict[str, str], key: str
) -> bytes | None:
    """The existing artifact's bytes when it was made from the same inputs and is intact."""
    if prev is None or cached.get("key") != key or cached.get("sha256") != prev.sha256:
        return None
    try:
        content = (out / prev.file).read_bytes()
    except OSError:
        return None
    return content if hashlib.sha256(content).hexdigest() == prev.sha256 else None


def source_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
