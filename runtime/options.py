"""The options `hemiface predict` and `hemiface run` share, defined once, and their choices.

Each option is an Annotated alias used by both commands; the choices are str Enums whose
values are the names the library uses (a bad value is Typer's usage error). The shared
options are read into one `ModelSetOptions`, checked when made, which opens the model set
and the face detector. Imported for `hemiface --help`: numpy and OpenCV are imported only
when a set is opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hemiface.runtime.errors import HemifaceError

if TYPE_CHECKING:
    from hemiface.runtime.face import Detector
    from hemiface.runtime.modelset import LoadChecks, ModelSet
    from hemiface.runtime.signing import VerifiedSet

HAAR_EVERY = 3  # the Haar cascade costs ~10-16 ms: detect every third frame, track between
FORMAT_HELP = "float32, float16, dynamic or int8; default: the fastest verified, per manifest."
DETECTOR_HELP = (
    "Face detector for --crop face: auto (BlazeFace short range, then full range when it "
    "finds nothing), short, full or haar; default: auto when the model set carries "
    "BlazeFace, else haar."
)
LEVEL_HELP = "Turn the face crop so the eyes are level (BlazeFace keypoints); never mirrors."
FUSE_HELP = (
    "Run models that share a trunk through their fused artifact when the set has one that "
    "passed (--no-fuse: each model's own artifact)."
)
DEFAULT_MARGIN = 0.25  # the face crop's margin, as runtime.face.DEFAULT_MARGIN


class ModelFormat(str, Enum):
    """A model set's formats (manifest.FORMATS)."""

    float32 = "float32"
    float16 = "float16"
    dynamic = "dynamic"
    int8 = "int8"


class Backend(str, Enum):
    """Interpreter backends (backends.BACKEND_NAMES)."""

    ai_edge_litert = "ai-edge-litert"
    tflite_runtime = "tflite-runtime"
    tensorflow = "tensorflow"


class DetectorChoice(str, Enum):
    """Face detectors (detectors.DETECTORS)."""

    auto = "auto"
    short = "short"
    full = "full"
    haar = "haar"
    blazeface = "blazeface"  # the same as auto: its name before the full-range model


class Crop(str, Enum):
    """What the models see (pipeline.CROPS): the whole image, the face, the centre square."""

    none = "none"
    face = "face"
    center = "center"  # type: ignore[assignment]  # the member shadows str.center


class Concurrency(str, Enum):
    """How the live loop uses the cores (live.CHOICES)."""

    auto = "auto"
    sequential = "sequential"
    models = "models"
    overlap = "overlap"
    both = "both"
    lanes = "lanes"


def _value(choice: Enum | None) -> str | None:
    return None if choice is None else str(choice.value)


# The options `predict` and `run` share, defined once.
ModelsOption = Annotated[
    Path, typer.Option("--models", "-m", help="Model-set folder (hemiface.json).")
]
FormatOption = Annotated[ModelFormat | None, typer.Option("--format", "-f", help=FORMAT_HELP)]
OnlyOption = Annotated[
    str | None, typer.Option("--only", help="Comma-separated model names to run.")
]
MarginOption = Annotated[
    float, typer.Option("--margin", help="Face-crop margin, share of the box.")
]
BackendOption = Annotated[
    Backend | None, typer.Option("--backend", help="ai-edge-litert, tflite-runtime.")
]
ThreadsOption = Annotated[int | None, typer.Option("--threads", help="Interpreter threads.")]
DetectorOption = Annotated[DetectorChoice | None, typer.Option("--detector", help=DETECTOR_HELP)]
LevelOption = Annotated[bool, typer.Option("--level/--no-level", help=LEVEL_HELP)]
FuseOption = Annotated[bool, typer.Option("--fuse/--no-fuse", help=FUSE_HELP)]
TRUSTED_KEY_HELP = (
    "Public key (PEM) whose signature the model set must carry (repeat for several); "
    "default: the keys in ~/.config/hemiface/trusted-keys/ (none: no check). Needs "
    "hemiface[signing]."
)
TrustedKeyOption = Annotated[
    list[Path] | None, typer.Option("--trusted-key", help=TRUSTED_KEY_HELP)
]


@dataclass(frozen=True)
class ModelSetOptions:
    """What `predict` and `run` share: the model set, how to open it, the face crop.

    Checked when made, before any file is opened.
    """

    folder: Path
    fmt: str | None = None
    only: list[str] | None = None
    backend: str | None = None
    threads: int | None = None
    fuse: bool = True
    detector: str | None = None
    margin: float = DEFAULT_MARGIN
    level: bool = True
    trusted_keys: tuple[Path, ...] = ()  # given ones; else the config folder's (signing.py)

    def __post_init__(self) -> None:
        from hemiface.runtime.modelset import MAX_THREADS

        if self.threads is not None and not 1 <= self.threads <= MAX_THREADS:
            raise HemifaceError(f"--threads must be 1 to {MAX_THREADS} (got {self.threads})")
        if not 0.0 <= self.margin <= 2.0:
            raise HemifaceError(
                f"--margin must be between 0 and 2, a share of the face box ({self.margin})"
            )

    @classmethod
    def from_options(
        cls,
        models: Path,
        fmt: ModelFormat | None,
        only: str | None,
        backend: Backend | None,
        threads: int | None,
        fuse: bool,
        detector: DetectorChoice | None,
        margin: float,
        level: bool,
        trusted_key: list[Path] | None = None,
    ) -> ModelSetOptions:
        names = [name.strip() for name in only.split(",") if name.strip()] if only else None
        return cls(
            folder=models,
            fmt=_value(fmt),
            only=names,
            backend=_value(backend),
            threads=threads,
            fuse=fuse,
            detector=_value(detector),
            margin=margin,
            level=level,
            trusted_keys=tuple(trusted_key or ()),
        )

    @cached_property
    def signature(self) -> VerifiedSet | None:
        """The set's signature, checked once (on first use) against the trusted keys; None
        when there are none. A set that fails raises SignatureError naming the file."""
        from hemiface.runtime.signing import trusted_keys, verify_model_set

        keys = trusted_keys(self.trusted_keys)
        return verify_model_set(self.folder, keys) if keys else None

    def check_signature(self) -> VerifiedSet | None:
        """Check the signature now (it is checked once, on first use, however often the
        set is opened)."""
        return self.signature

    def _checks(self) -> LoadChecks:
        from hemiface.runtime.modelset import LoadChecks

        signed = self.signature
        return LoadChecks(
            manifest_sha256=None if signed is None else signed.manifest_sha256,
            verified_only=True,
        )

    def open(self, threads: int | None = None, concurrency: str = "sequential") -> ModelSet:
        """The model set, with `threads` (default: the chosen ones) a model interpreter."""
        from hemiface.runtime.modelset import load_model_set

        return load_model_set(
            self.folder,
            self.fmt,
            self.only,
            self.backend,
            threads if threads is not None else self.threads,
            self.fuse,
            concurrency,
            self._checks(),
        )

    def open_detector(self, stream: bool = False) -> Detector:
        """The chosen face detector; `stream`: for the frames of a live loop."""
        from hemiface.runtime.detectors import open_detector

        signed = self.signature
        pinned = None if signed is None else signed.manifest_sha256
        return open_detector(
            self.folder, self.detector, self.backend, pinned_manifest=pinned, stream=stream
        )
