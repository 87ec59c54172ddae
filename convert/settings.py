"""What `convert_models` is asked to do: one settings object, checked once when made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hemiface.convert import compat
from hemiface.convert.tflite_convert import INT8_IO
from hemiface.core.errors import HemifaceError
from hemiface.runtime.manifest import FORMATS


class ConvertOptionError(HemifaceError):
    """The options given to convert do not fit together."""


@dataclass(frozen=True)
class ConvertSettings:
    """Formats, calibration and verification images, gates and parallelism of one run.

    `calib` is an image folder or "synthetic"; `verify` a labelled folder (default: the
    calibration set); `jobs` the worker processes that convert and verify artifacts side
    by side (None: chosen from the machine's cores and memory, see `convert.jobs`).
    """

    formats: tuple[str, ...] = FORMATS
    calib: Path | str | None = None
    verify: Path | None = None
    int8_io: str = "int8"
    target: str | None = None
    max_flip_rate: float | None = None
    unsafe: bool = False
    names: tuple[str, ...] | None = None
    output_index: int | None = None
    runtime_python: tuple[Path, ...] | None = None
    custom_objects: Path | None = None
    fuse: bool = True
    jobs: int | None = None

    def __post_init__(self) -> None:
        chosen = tuple(dict.fromkeys(self.formats))
        unknown = [f for f in chosen if f not in FORMATS]
        if unknown or not chosen:
            raise ConvertOptionError(
                f"unknown format(s) {', '.join(unknown) or '(none)'}: "
                f"choose from {', '.join(FORMATS)}"
            )
        # Always in FORMATS' order, whatever order they were asked in.
        object.__setattr__(self, "formats", tuple(f for f in FORMATS if f in chosen))
        if "int8" in chosen and self.calib is None:
            raise ConvertOptionError(
                "full int8 needs calibration images: pass --calib DIR (100-500 images like the "
                "training data), or --calib synthetic, or leave int8 out of --formats"
            )
        if self.int8_io not in INT8_IO:
            raise ConvertOptionError(f"--int8-io must be one of {', '.join(INT8_IO)}")
        if self.target is not None and self.target not in compat.TARGETS:
            raise ConvertOptionError(
                f"unknown --target {self.target!r}: known targets are {', '.join(compat.TARGETS)}"
            )
        if self.max_flip_rate is not None and not 0.0 <= self.max_flip_rate <= 1.0:
            raise ConvertOptionError("--max-flip-rate must be between 0 and 1")
        if self.jobs is not None and self.jobs < 1:
            raise ConvertOptionError(f"--jobs must be 1 or more (got {self.jobs})")
        if self.names is not None:
            object.__setattr__(self, "names", tuple(self.names))
        if self.runtime_python is not None:
            object.__setattr__(self, "runtime_python", tuple(Path(p) for p in self.runtime_python))
