"""Which face detector crops the face: BlazeFace from the model set, or OpenCV's Haar cascade.

`--detector` chooses:

- `auto` (the default; `blazeface` is the same): the search of
  `hemiface.runtime.face_search`, short range first and the full-range model only when
  that finds nothing, when the set carries both models; the short-range model alone when
  the set carries only it (sets converted before the full-range model travelled with
  them); the Haar cascade when the set carries no BlazeFace at all.
- `short` / `full`: one BlazeFace model, one pass over the whole frame.
- `haar`: OpenCV's cascade on a downscaled frame.

Each model file is checksummed against the manifest before the interpreter sees it, like
a classifier's; a file that fails is refused. A model that cannot be loaded is one line that
names the way out, `--detector haar`.
"""

from __future__ import annotations

from pathlib import Path

from hemiface.core.quiet import quiet_fds
from hemiface.runtime.backends import resolve_backend
from hemiface.runtime.blazeface import (
    FULL_RANGE,
    MODELS,
    SHORT_RANGE,
    BlazeFaceDetector,
    BlazeFaceModel,
)
from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.face import Detector, FaceDetector
from hemiface.runtime.face_search import (
    STEP_TEXT,
    STREAM_TILES_EVERY,
    FaceSearch,
    search_steps,
)
from hemiface.runtime.manifest import Manifest, load_manifest, read_verified_model

DETECTORS = ("auto", "short", "full", "haar")
ALIASES = {"blazeface": "auto"}  # the name `--detector` took before the full-range model
DETECTOR_THREADS = 1  # 229 KB and 1 MB models: more threads only add synchronisation


def check_detector_choice(choice: str | None) -> str | None:
    """The choice with its alias resolved; HemifaceError for an unknown one."""
    if choice is None:
        return None
    choice = ALIASES.get(choice, choice)
    if choice not in DETECTORS:
        raise HemifaceError(f"--detector must be {', '.join(DETECTORS)} (got {choice!r})")
    return choice


def open_detector(
    folder: Path,
    choice: str | None = None,
    backend: str | None = None,
    num_threads: int | None = DETECTOR_THREADS,
    pinned_manifest: str | None = None,
    stream: bool = False,
) -> Detector:
    """The detector for the model set in `folder`: `choice`, or the best the set allows.

    `pinned_manifest`: the manifest's sha256 as a checked signature lists it. `stream`:
    for the frames of a live loop (the search's slow last step then runs on every
    STREAM_TILES_EVERY-th frame while nothing is found).
    Raises ManifestError when a detector file fails its checksum (or the manifest is not
    the pinned one), HemifaceError when a BlazeFace model was asked for and the set has
    none, or when a model cannot be loaded.
    """
    choice = check_detector_choice(choice)
    if choice == "haar":
        return FaceDetector()
    folder = Path(folder)
    manifest = load_manifest(folder, check_files=False, pinned_sha256=pinned_manifest)
    if choice in ("short", "full"):
        model = next(m for m in MODELS if m.range == choice)
        detector = _open_model(folder, manifest, model, backend, num_threads)
        if detector is None:
            raise HemifaceError(
                f"{folder}: this model set carries no BlazeFace {choice}-range detector "
                "(converted before hemiface copied it in): convert again, or use --detector "
                "auto or haar"
            )
        return detector
    short = _open_model(folder, manifest, SHORT_RANGE, backend, num_threads)
    full = _open_model(folder, manifest, FULL_RANGE, backend, num_threads)
    if short is not None:
        return FaceSearch(short, full, tiles_every=STREAM_TILES_EVERY if stream else 1)
    if full is not None:
        return full
    if choice == "auto":
        raise HemifaceError(
            f"{folder}: this model set carries no BlazeFace detector (converted before "
            "hemiface copied it in): convert again, or use --detector haar"
        )
    return FaceDetector()


def _open_model(
    folder: Path,
    manifest: Manifest,
    model: BlazeFaceModel,
    backend: str | None,
    num_threads: int | None,
) -> BlazeFaceDetector | None:
    """The set's BlazeFace model of this kind, checked and loaded; None when it has none."""
    entry = manifest.detector(model.kind)
    if entry is None:
        return None
    content = read_verified_model(folder, entry)
    return load_blazeface(content, model, folder / entry.file, backend, num_threads)


def load_blazeface(
    content: bytes,
    model: BlazeFaceModel,
    where: Path,
    backend: str | None = None,
    num_threads: int | None = DETECTOR_THREADS,
) -> BlazeFaceDetector:
    """A BlazeFace detector on the model's bytes; HemifaceError naming `where` when the
    interpreter cannot load them or they are not that model."""
    chosen = resolve_backend(backend)
    try:
        with quiet_fds(2):
            interpreter = chosen.make_interpreter(content, num_threads)
        return BlazeFaceDetector(interpreter, model)
    except (ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HemifaceError(
            f"{where}: the BlazeFace detector cannot be loaded ({reason}); use --detector haar"
        ) from None


def describe_detectors(folder: Path) -> dict[str, object]:
    """The set's face detectors (file, kind, size) and what `--detector auto` runs with them."""
    manifest = load_manifest(Path(folder), check_files=False)
    have = {model.range for model in MODELS if manifest.detector(model.kind)}
    if "short" in have:
        steps = ", ".join(STEP_TEXT[step] for step in search_steps("full" in have))
        default = "auto: " + steps + ("" if "full" in have else " (the set has no full range)")
    elif have:
        default = "full range alone (the set has no short range)"
    else:
        default = "haar (the set carries no BlazeFace)"
    files = [
        {"file": d.file, "kind": d.kind, "size_bytes": d.size_bytes} for d in manifest.detectors
    ]
    return {"files": files, "default": default}
