"""`convert_models`: Keras models in, a verified model set (.tflite files + manifest) out.

Order of work, chosen so that bad input never leaves anything half-written:
1. check every option and load every model: a model that fails to load is reported and
   the others go on (ModelLoadError, one line a file, when none loads);
2. read the calibration / verification images (DatasetError when empty or unreadable);
3. per model and format: convert (or reuse a valid earlier artifact), read its ops, load it
   in every reachable interpreter, verify it against the Keras model;
4. the whole run holds the model set's lock; new artifacts are written into a staging
   folder inside OUT and published as one transaction (`publish.ModelSetTransaction`): new
   files under names the live manifest does not use, the manifest swapped last, the files
   only the old manifest named deleted after. Readers see the old set or the new one,
   whatever stops this run and whenever.
A cache file in OUT records, per artifact, a key of everything its bytes depend on
(source sha256, format, options, calibration tensors, TF version); a re-run with the same
key and an unchanged file reuses the artifact and its verification.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hemiface.convert import compat
from hemiface.convert.artifact import ModelWork
from hemiface.convert.calibration import (
    CALIB_MIN,
    VERIFY_MAX,
    ImageSet,
    load_image_set,
    resolve_calibration,
)
from hemiface.convert.detector import stage_detectors
from hemiface.convert.fused_artifact import fuse_models, merge_fused
from hemiface.convert.publish import ModelSetTransaction
from hemiface.convert.summary import ConversionRow, ConversionSummary
from hemiface.convert.tflite_convert import INT8_IO
from hemiface.kerasio import LoadedModel, ModelLoadError, load_custom_objects, load_keras_model
from hemiface.runtime.backends import resolve_backend
from hemiface.runtime.errors import HemifaceError, ManifestError
from hemiface.runtime.manifest import (
    FORMATS,
    MANIFEST_NAME,
    LoadCheck,
    Manifest,
    ModelEntry,
    Preprocessing,
    atomic_write_bytes,
    load_manifest,
)

__all__ = ["ConversionRow", "ConversionSummary", "convert_models"]
CACHE_NAME = ".hemiface-convert-cache.json"
Progress = Callable[[str, int, int], None]  # (message, steps done, steps in all)


class ConvertOptionError(HemifaceError):
    """The options given to convert do not fit together."""


def convert_models(
    models: list[Path],
    out: Path,
    formats: tuple[str, ...] | list[str] = FORMATS,
    calib: Path | str | None = None,
    verify: Path | None = None,
    int8_io: str = "int8",
    target: str | None = None,
    max_flip_rate: float | None = None,
    unsafe: bool = False,
    names: list[str] | None = None,
    progress: Progress | None = None,
    output_index: int | None = None,
    runtime_python: list[Path] | None = None,
    custom_objects: Path | None = None,
    fuse: bool = True,
) -> ConversionSummary:
    """Convert each model to each format into OUT, verify, and write OUT/hemiface.json."""
    started = time.perf_counter()
    formats = _check_options(models, formats, calib, int8_io, target, max_flip_rate, names)
    out = Path(out)
    loaded, load_failures = _load_models(models, names, unsafe, output_index, custom_objects)
    _check_unique_names(loaded)
    _check_writable(out)
    notes: list[str] = []
    backend = resolve_backend()
    total = len(loaded) * len(formats)
    step = 0
    with tempfile.TemporaryDirectory(prefix="hemiface-convert-") as tmp:
        image_sets: dict[tuple[str, int, int], ImageSet | None] = {}
        with ModelSetTransaction(out) as transaction:
            notes.extend(transaction.notes)
            previous = _previous_manifest(out, notes)
            cache = _read_cache(out)
            staging = transaction.staging
            rows: list[ConversionRow] = []
            entries: list[ModelEntry] = []
            works: list[ModelWork] = []
            for model in loaded:
                spec = _preprocessing_for(model)
                calib_set = _image_set(image_sets, "calib", calib, spec, Path(tmp), notes)
                verify_set = (
                    _image_set(image_sets, "verify", verify, spec, Path(tmp), notes)
                    if verify is not None
                    else calib_set
                )
                work = ModelWork(
                    model, spec, calib_set, verify_set, Path(tmp), backend, output_index
                )
                works.append(work)
                for fmt in formats:
                    if progress:
                        progress(f"{model.name} {fmt}", step, total)
                    entry, row = work.artifact(
                        fmt, out, staging, previous, cache, int8_io, target, max_flip_rate
                    )
                    entries.append(entry)
                    rows.append(row)
                    step += 1
            _load_elsewhere(rows, entries, staging, out, runtime_python)
            _apply_target(rows, target)
            options = (int8_io, target, max_flip_rate)
            fused, fused_rows = fuse_models(
                works if fuse else [],
                formats,
                entries,
                Path(tmp),
                out,
                staging,
                previous,
                cache,
                *options,
                notes,
            )
            rows += fused_rows
            detectors = stage_detectors(staging, out, previous, backend, notes)
            models_kept = _merge_entries(previous, entries)
            manifest = Manifest(
                models=models_kept,
                detectors=detectors,
                fused=merge_fused(previous, fused, models_kept),
            )
            staged_names = [(f, f.file) for f in fused]
            manifest_path = transaction.commit(manifest)
            for row, entry in zip(rows[: len(entries)], entries, strict=True):
                row.file = entry.file  # the name the commit gave it
            renamed = {old: f.file for f, old in staged_names}
            for row in fused_rows:
                row.file = renamed.get(row.file, row.file)
            _write_cache(out, cache)
    if progress:
        progress("done", total, total)
    if verify is None and calib is None:
        notes.append("no verification images (--verify DIR): artifacts were not verified")
    return ConversionSummary(
        out=out,
        manifest=manifest_path,
        rows=rows,
        calibration=_describe(image_sets, "calib"),
        verification=_describe(image_sets, "verify" if verify is not None else "calib"),
        notes=notes,
        seconds=time.perf_counter() - started,
        load_failures=load_failures,
    )


def _load_models(
    models: list[Path],
    names: list[str] | None,
    unsafe: bool,
    output_index: int | None,
    custom_objects: Path | None,
) -> tuple[list[LoadedModel], list[str]]:
    """Every model that loads, and one line for each that does not; when none loads,
    ModelLoadError with every line."""
    loaded: list[LoadedModel] = []
    failures: list[str] = []
    objects = load_custom_objects(custom_objects) if custom_objects is not None else None
    for index, path in enumerate(models):
        try:
            model = load_keras_model(Path(path), unsafe, output_index, objects)
        except ModelLoadError as exc:
            failures.append(str(exc))
            continue
        if names:
            model.name = names[index]
        loaded.append(model)
    if not loaded:
        raise ModelLoadError("\n".join(failures))
    return loaded, failures


def _describe(sets: dict[tuple[str, int, int], ImageSet | None], role: str) -> str | None:
    found = [s.description for key, s in sets.items() if key[0] == role and s is not None]
    return "; ".join(dict.fromkeys(found)) or None


def _check_options(
    models: list[Path],
    formats: tuple[str, ...] | list[str],
    calib: Path | str | None,
    int8_io: str,
    target: str | None,
    max_flip_rate: float | None,
    names: list[str] | None,
) -> tuple[str, ...]:
    if not models:
        raise ConvertOptionError("no models given")
    chosen = tuple(dict.fromkeys(formats))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise ConvertOptionError(
            f"unknown format(s) {', '.join(unknown) or '(none)'}: choose from {', '.join(FORMATS)}"
        )
    if "int8" in chosen and calib is None:
        raise ConvertOptionError(
            "full int8 needs calibration images: pass --calib DIR (100-500 images like the "
            "training data), or --calib synthetic, or leave int8 out of --formats"
        )
    if int8_io not in INT8_IO:
        raise ConvertOptionError(f"--int8-io must be one of {', '.join(INT8_IO)}")
    if target is not None and target not in compat.TARGETS:
        raise ConvertOptionError(
            f"unknown --target {target!r}: known targets are {', '.join(compat.TARGETS)}"
        )
    if max_flip_rate is not None and not 0.0 <= max_flip_rate <= 1.0:
        raise ConvertOptionError("--max-flip-rate must be between 0 and 1")
    if names is not None and len(names) != len(models):
        raise ConvertOptionError(f"{len(names)} --name given for {len(models)} model(s)")
    return tuple(f for f in FORMATS if f in chosen)


def _check_unique_names(loaded: list[LoadedModel]) -> None:
    seen: dict[str, Path] = {}
    for model in loaded:
        if model.name in seen:
            raise ConvertOptionError(
                f"{model.path} and {seen[model.name]} would both be named {model.name!r}: "
                "use --name"
            )
        if not model.name or "/" in model.name or model.name.startswith("."):
            raise ConvertOptionError(f"{model.path}: {model.name!r} is not a usable model name")
        seen[model.name] = model.path


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".hemiface-probe-", delete=True)
        probe.close()
    except OSError as exc:
        raise HemifaceError(
            f"{out}: cannot write the model set here ({exc.strerror or exc})"
        ) from None


def _previous_manifest(out: Path, notes: list[str]) -> Manifest | None:
    if not (out / MANIFEST_NAME).exists():
        return None
    try:
        return load_manifest(out, check_files=False)
    except ManifestError as exc:
        notes.append(f"the existing manifest was not usable and is replaced ({exc})")
        return None


def _read_cache(out: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads((out / CACHE_NAME).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(out: Path, cache: dict[str, dict[str, str]]) -> None:
    text = json.dumps(cache, indent=1, sort_keys=True) + "\n"
    atomic_write_bytes(out / CACHE_NAME, text.encode("utf-8"))


def _preprocessing_for(model: LoadedModel) -> Preprocessing:
    height, width, _ = model.input_shape
    return Preprocessing(width=width, height=height)


def _image_set(
    sets: dict[tuple[str, int, int], ImageSet | None],
    role: str,
    source: Path | str | None,
    spec: Preprocessing,
    workdir: Path,
    notes: list[str],
) -> ImageSet | None:
    key = (role, spec.height, spec.width)
    if key not in sets:
        if source is None:
            sets[key] = None
        elif role == "calib":
            sets[key] = resolve_calibration(source, spec, workdir)
        else:
            sets[key] = load_image_set(Path(source), spec, VERIFY_MAX, purpose="verification")
        image_set = sets[key]
        if image_set is not None:
            notes.extend(f"skipped unreadable image: {line}" for line in image_set.skipped)
            if role == "calib" and len(image_set.paths) < CALIB_MIN:
                notes.append(
                    f"only {len(image_set.paths)} calibration images (100-500 recommended)"
                )
    return sets[key]


def _load_elsewhere(
    rows: list[ConversionRow],
    entries: list[ModelEntry],
    staging: Path,
    out: Path,
    runtime_python: list[Path] | None,
) -> None:
    """Try every artifact in the other Pythons (e.g. a tflite-runtime 2.14 venv)."""
    pythons = compat.runtime_pythons(runtime_python)
    if not pythons:
        return
    paths = [staging / r.file if (staging / r.file).exists() else out / r.file for r in rows]
    for python in pythons:
        results = compat.load_in_python(python, paths)
        for row, entry, path in zip(rows, entries, paths, strict=True):
            entry.loads_in.update(results.get(path, {}))
            row.loads_in = entry.loads_in


def _apply_target(rows: list[ConversionRow], target: str | None) -> None:
    """Under --target, an artifact that the target interpreter failed to load fails."""
    if target is None:
        return
    package = target.rsplit("-", 1)[0]
    for row in rows:
        for runtime, result in row.loads_in.items():
            check = LoadCheck.from_manifest(result)
            if runtime.startswith(package) and not check.ok:
                row.problems.append(f"{runtime} could not load it: {check.error}")
        row.passed = not row.problems


def _merge_entries(previous: Manifest | None, entries: list[ModelEntry]) -> list[ModelEntry]:
    """New entries replace old ones of the same (name, format). Other formats of a model
    are kept only while they come from the same source file (same sha256); other models
    are kept as they are."""
    sources = {entry.name: entry.source.sha256 if entry.source else "" for entry in entries}
    new_keys = {(entry.name, entry.format) for entry in entries}
    kept = []
    for old in previous.models if previous else []:
        if (old.name, old.format) in new_keys:
            continue
        if old.name in sources and (old.source is None or old.source.sha256 != sources[old.name]):
            continue
        kept.append(old)
    return kept + entries
