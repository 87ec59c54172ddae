"""The run's context and its plan: which artifacts to make, from which SavedModels, with
which images, and which earlier artifacts can be reused.

`RunContext` is what every step of one run shares (the set's folder, its staging folder,
a work folder, the earlier manifest and cache, the settings). `plan_run` exports each
model (and each shared trunk's fused model) once as a SavedModel, writes the calibration
and check images once as .npy files, and returns one `ArtifactJob` per artifact: the
models in the order given, each in FORMATS' order, then the fused artifacts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.convert.artifact import ArtifactJob, OutputSource, Trunk
from hemiface.convert.calibration import (
    CALIB_MIN,
    VERIFY_MAX,
    ImageSet,
    load_image_set,
    resolve_calibration,
)
from hemiface.convert.fuse import SharedTrunk, build_fused_model, export_fused
from hemiface.convert.settings import ConvertSettings
from hemiface.convert.tflite_convert import STATIC_BATCH, export_saved_model
from hemiface.core.checksum import sha256_file
from hemiface.core.domain import model_title
from hemiface.kerasio import LoadedModel
from hemiface.runtime.manifest import (
    ConverterInfo,
    FusedEntry,
    Manifest,
    ModelEntry,
    Preprocessing,
    SourceModel,
)

PROBE_IMAGES = 8  # random inputs to run an artifact on when no images were given


@dataclass
class RunContext:
    """What the steps of one convert run share."""

    out: Path
    staging: Path
    workdir: Path
    previous: Manifest | None
    cache: dict[str, dict[str, str]]
    settings: ConvertSettings
    notes: list[str] = field(default_factory=list)
    image_sets: dict[tuple[str, int, int], ImageSet | None] = field(default_factory=dict)


@dataclass
class ModelSource:
    """One loaded model with what its artifacts are made from."""

    model: LoadedModel
    spec: Preprocessing
    versions: ConverterInfo
    calib_set: ImageSet | None
    verify_set: ImageSet | None
    saved_model: Path
    calibration: Path | None  # .npy of the calibration tensors
    check_images: Path  # .npy of the verification tensors, or of probe images

    @property
    def name(self) -> str:
        return self.model.name

    def output(self) -> OutputSource:
        m = self.model
        source = SourceModel(m.path.name, m.sha256, m.source_format, m.loader)
        return OutputSource(m.name, model_title(m.name), source)

    @property
    def source_bytes(self) -> int:
        path = self.model.path
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.stat().st_size

    def verify_key(self, max_flip_rate: float | None) -> str:
        if self.verify_set is None:
            return "none"
        return f"{self.verify_set.fingerprint()}|{max_flip_rate}"


def converter_versions(model: Any = None) -> ConverterInfo:
    """hemiface, TensorFlow and the Keras that exported `model` (tf-keras for a Keras 2 one)."""
    import tensorflow as tf

    from hemiface.core.version import __version__
    from hemiface.kerasio import keras_module_for

    keras = keras_module_for(model)
    return ConverterInfo(hemiface=__version__, tensorflow=tf.__version__, keras=keras.__version__)


def model_source(run: RunContext, model: LoadedModel) -> ModelSource:
    """The model exported once, and its image sets written once as .npy files."""
    height, width, _ = model.input_shape
    spec = Preprocessing(width=width, height=height)
    settings = run.settings
    calib_set = _image_set(run, "calib", settings.calib, spec)
    verify_set = (
        _image_set(run, "verify", settings.verify, spec)
        if settings.verify is not None
        else calib_set
    )
    # TensorFlow reads the variables back through a glob pattern: a name with "[" or "*"
    # in it would match nothing, so the folder gets a name without.
    digest = hashlib.sha256(model.name.encode("utf-8")).hexdigest()[:12]
    saved_model = run.workdir / f"savedmodel-{digest}"  # exported when a job needs it
    calibration = _tensors_file(run, "calib", spec, calib_set)
    check = _tensors_file(run, "verify", spec, verify_set) or _probe_file(run, spec)
    versions = converter_versions(model.model)
    return ModelSource(
        model, spec, versions, calib_set, verify_set, saved_model, calibration, check
    )


def export_model(source: ModelSource) -> None:
    """The model as a SavedModel, once, when an artifact has to be converted from it."""
    if not source.saved_model.exists():
        export_saved_model(source.model.model, source.saved_model)


def _image_set(
    run: RunContext, role: str, source: Path | str | None, spec: Preprocessing
) -> ImageSet | None:
    key = (role, spec.height, spec.width)
    if key not in run.image_sets:
        if source is None:
            run.image_sets[key] = None
        elif role == "calib":
            run.image_sets[key] = resolve_calibration(source, spec, run.workdir)
        else:
            run.image_sets[key] = load_image_set(
                Path(source), spec, VERIFY_MAX, purpose="verification"
            )
        image_set = run.image_sets[key]
        if image_set is not None:
            run.notes.extend(f"skipped unreadable image: {line}" for line in image_set.skipped)
            if role == "calib" and len(image_set.paths) < CALIB_MIN:
                run.notes.append(
                    f"only {len(image_set.paths)} calibration images (100-500 recommended)"
                )
    return run.image_sets[key]


def _tensors_file(
    run: RunContext, role: str, spec: Preprocessing, image_set: ImageSet | None
) -> Path | None:
    if image_set is None:
        return None
    path = run.workdir / f"{role}-{spec.height}x{spec.width}.npy"
    if not path.exists():
        np.save(path, np.ascontiguousarray(image_set.tensors, dtype=np.float32))
    return path


def _probe_file(run: RunContext, spec: Preprocessing) -> Path:
    path = run.workdir / f"probe-{spec.height}x{spec.width}.npy"
    if not path.exists():
        rng = np.random.default_rng(0)
        np.save(path, rng.random((PROBE_IMAGES, spec.height, spec.width, 3), dtype=np.float32))
    return path


def model_key(source: ModelSource, fmt: str, settings: ConvertSettings) -> str:
    """Everything a model's artifact bytes depend on: equal keys, equal bytes."""
    v = source.versions
    parts = [source.model.sha256, fmt, v.tensorflow, v.hemiface]
    parts += [f"loader={source.model.loader} {v.keras}"]
    parts += [f"output={settings.output_index}", f"target={settings.target}"]
    parts += [f"batch={STATIC_BATCH}"]
    return "|".join(parts + _int8_parts(source, fmt, settings))


def fused_key(members: list[ModelSource], layers: int, fmt: str, settings: ConvertSettings) -> str:
    first = members[0]
    parts = ["fused", *(m.model.sha256 for m in members), fmt]
    parts += [first.versions.tensorflow, first.versions.hemiface, str(layers)]
    parts += [f"target={settings.target}", f"batch={STATIC_BATCH}"]
    return "|".join(parts + _int8_parts(first, fmt, settings))


def _int8_parts(source: ModelSource, fmt: str, settings: ConvertSettings) -> list[str]:
    if fmt != "int8":
        return []
    calib = source.calib_set.fingerprint() if source.calib_set else ""
    return [f"io={settings.int8_io}", calib]


def previous_entry(run: RunContext, name: str, fmt: str) -> ModelEntry | FusedEntry | None:
    if run.previous is None:
        return None
    entries: list[ModelEntry | FusedEntry] = [*run.previous.models, *run.previous.fused]
    return next((e for e in entries if e.name == name and e.format == fmt), None)


def reusable(run: RunContext, file: str, name: str, fmt: str, key: str) -> Path | None:
    """The earlier artifact made from the same inputs, when the cache and manifest say
    so (its bytes are checked again where it is read)."""
    prev = previous_entry(run, name, fmt)
    cached = run.cache.get(file, {})
    if prev is None or cached.get("key") != key or cached.get("sha256") != prev.sha256:
        return None
    path = run.out / prev.file
    try:
        intact = sha256_file(path) == prev.sha256 if path.is_file() else False
    except OSError:
        intact = False
    return path if intact else None


def model_job(run: RunContext, source: ModelSource, fmt: str) -> tuple[ArtifactJob, str]:
    """One model's artifact of one format, and its cache key."""
    key = model_key(source, fmt, run.settings)
    return _job(run, source.name, [source], fmt, key, source.saved_model, None), key


def fused_job(
    run: RunContext, trunk: SharedTrunk, members: list[ModelSource], fmt: str, saved_model: Path
) -> tuple[ArtifactJob, str]:
    """A shared trunk's fused artifact of one format (an artifact with one output per
    model), and its cache key."""
    key = fused_key(members, trunk.layers, fmt, run.settings)
    shared = Trunk(trunk.layers, trunk.last_shared, trunk.shared_params)
    return _job(run, "+".join(trunk.names), members, fmt, key, saved_model, shared), key


def _job(
    run: RunContext,
    name: str,
    members: list[ModelSource],
    fmt: str,
    key: str,
    saved_model: Path,
    trunk: Trunk | None,
) -> ArtifactJob:
    settings, first = run.settings, members[0]
    file = f"{name}.{fmt}.tflite"
    prev = previous_entry(run, name, fmt)
    reuse = reusable(run, file, name, fmt, key)
    return ArtifactJob(
        name=name,
        format=fmt,
        file=file,
        outputs=tuple(m.output() for m in members),
        saved_model=saved_model,
        preprocessing=first.spec,
        converter=first.versions,
        staging=run.staging,
        check_images=first.check_images,
        int8_io=settings.int8_io,
        target=settings.target,
        calibration=first.calibration,
        calibration_text=first.calib_set.description if first.calib_set else None,
        reuse=reuse,
        reuse_sha256=prev.sha256 if reuse is not None and prev is not None else None,
        trunk=trunk,
    )


def export_trunk(trunk: SharedTrunk, folder: Path) -> None:
    """The fused Keras model of a shared trunk, exported once, when an artifact has to be
    converted from it."""
    if not folder.exists():
        export_fused(build_fused_model(trunk), folder, trunk.models[0].input_shape)


def settled(run: RunContext, job: ArtifactJob, verify_key: str) -> bool:
    """The job reuses an intact earlier artifact whose verification still holds: nothing
    needs converting, running or comparing again."""
    return job.reuse is not None and run.cache.get(job.file, {}).get("verify") == verify_key


def fusable(trunk: SharedTrunk, sources: dict[str, ModelSource]) -> bool:
    """One input tensor feeds the trunk: the members' preprocessing must be one."""
    specs = {(s.spec.height, s.spec.width, s.spec.scale, s.spec.offset) for s in
             (sources[n] for n in trunk.names)}  # fmt: skip
    return len(specs) == 1
