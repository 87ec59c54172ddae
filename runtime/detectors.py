"""Which face detector crops the face: BlazeFace from the model set, or OpenCV's Haar cascade.

BlazeFace is the default when the model set carries it (sets converted before it did use
Haar). Its file is checksummed against the manifest before the interpreter sees it, like a
classifier's; a file that fails is refused. A model that cannot be loaded is one line that
names the way out, `--detector haar`.
"""

from __future__ import annotations

from pathlib import Path

from hemiface.core.quiet import quiet_fds
from hemiface.runtime.backends import resolve_backend
from hemiface.runtime.blazeface import KIND, BlazeFaceDetector
from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.face import Detector, FaceDetector
from hemiface.runtime.manifest import load_manifest, read_verified_model

DETECTORS = ("blazeface", "haar")
DETECTOR_THREADS = 1  # a 229 KB model: more threads only add synchronisation


def check_detector_choice(choice: str | None) -> str | None:
    if choice is not None and choice not in DETECTORS:
        raise HemifaceError(f"--detector must be {' or '.join(DETECTORS)} (got {choice!r})")
    return choice


def open_detector(
    folder: Path,
    choice: str | None = None,
    backend: str | None = None,
    num_threads: int | None = DETECTOR_THREADS,
    pinned_manifest: str | None = None,
) -> Detector:
    """The detector for the model set in `folder`: `choice`, or BlazeFace when it has one.

    `pinned_manifest`: the manifest's sha256 as a checked signature lists it.
    Raises ManifestError when the detector file fails its checksum (or the manifest is not
    the pinned one: the sha256 a checked signature lists), HemifaceError when BlazeFace
    was asked for and the set has none, or when its model cannot be loaded.
    """
    check_detector_choice(choice)
    if choice == "haar":
        return FaceDetector()
    folder = Path(folder)
    entry = load_manifest(folder, check_files=False, pinned_sha256=pinned_manifest).detector(KIND)
    if entry is None:
        if choice == "blazeface":
            raise HemifaceError(
                f"{folder}: this model set carries no BlazeFace detector (converted before "
                "hemiface copied it in): convert again, or use --detector haar"
            )
        return FaceDetector()
    content = read_verified_model(folder, entry)
    chosen = resolve_backend(backend)
    try:
        with quiet_fds(2):
            interpreter = chosen.make_interpreter(content, num_threads)
        return BlazeFaceDetector(interpreter)
    except (ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HemifaceError(
            f"{folder / entry.file}: the BlazeFace detector cannot be loaded ({reason}); "
            "use --detector haar"
        ) from None
