"""`convert_models`: Keras models in, a verified model set (.tflite files + manifest) out.

Order of work, chosen so that bad input never leaves anything half-written:
1. check the settings and load every model: a model that fails to load is reported and
   the others go on (ModelLoadError, one line a file, when none loads);
2. under the model set's lock (`publish.ModelSetTransaction`): read the calibration and
   verification images once, export each model and each shared trunk's fused model once
   (`plan`), and make one job per artifact;
3. make the artifacts side by side in worker processes (`jobs`): convert (or reuse a valid
   earlier artifact), read the ops, load, run on the check images. Meanwhile this process
   runs each Keras model once on the verification images;
4. compare every artifact with its source and apply the gates (`assemble`), then publish
   as one transaction: new files under names the live manifest does not use, the manifest
   swapped last, the files only the old manifest named deleted after. Readers see the old
   set or the new one, whatever stops this run and whenever.
A cache file in OUT records, per artifact, a key of everything its bytes depend on
(source sha256, format, options, calibration tensors, TF version); a re-run with the same
key and an unchanged file reuses the artifact and its verification.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import resource
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hemiface.convert import compat
from hemiface.convert.artifact import STEPS, ArtifactJob, StepClock
from hemiface.convert.assemble import Assembled, Planned, assemble, merge_fused, merge_models
from hemiface.convert.detector import stage_detectors
from hemiface.convert.fuse import find_shared_trunks
from hemiface.convert.jobs import JobOutcome, Workers, default_workers
from hemiface.convert.plan import (
    ModelSource,
    RunContext,
    export_model,
    export_trunk,
    fusable,
    fused_job,
    model_job,
    model_source,
    settled,
)
from hemiface.convert.publish import ModelSetTransaction
from hemiface.convert.settings import ConvertOptionError, ConvertSettings
from hemiface.convert.summary import ConversionRow, ConversionSummary, Timing
from hemiface.convert.verify import KERAS_BATCH
from hemiface.core.errors import HemifaceError
from hemiface.kerasio import (
    LoadedModel,
    ModelLoadError,
    load_custom_objects,
    load_keras_model,
    predict_probabilities,
)
from hemiface.runtime.backends import resolve_backend
from hemiface.runtime.errors import ManifestError
from hemiface.runtime.manifest import (
    MANIFEST_NAME,
    LoadCheck,
    Manifest,
    atomic_write_bytes,
    load_manifest,
)

__all__ = [
    "ConversionRow",
    "ConversionSummary",
    "ConvertOptionError",
    "ConvertSettings",
    "convert_models",
]
CACHE_NAME = ".hemiface-convert-cache.json"
Progress = Callable[[str, int, int], None]  # (message, steps done, steps in all)


def convert_models(
    models: list[Path],
    out: Path,
    settings: ConvertSettings | None = None,
    *,
    progress: Progress | None = None,
) -> ConversionSummary:
    """Convert each model to each format into OUT, verify, and write OUT/hemiface.json."""
    started = time.perf_counter()
    settings = settings if settings is not None else ConvertSettings()
    if not models:
        raise ConvertOptionError("no models given")
    if settings.names is not None and len(settings.names) != len(models):
        raise ConvertOptionError(f"{len(settings.names)} --name given for {len(models)} model(s)")
    clock = StepClock()
    out = Path(out)
    with clock("load models"):
        loaded, load_failures = _load_models(models, settings)
    _check_unique_names(loaded)
    _check_writable(out)
    with tempfile.TemporaryDirectory(prefix="hemiface-convert-") as tmp:
        with ModelSetTransaction(out) as transaction:
            run = RunContext(out, transaction.staging, Path(tmp), None, _read_cache(out), settings)
            run.notes.extend(transaction.notes)
            run.previous = _previous_manifest(out, run.notes)
            params = {m.name: int(m.model.count_params()) for m in loaded}
            least_jobs = len(loaded) * len(settings.formats)
            workers = settings.jobs or default_workers(least_jobs, sum(params.values()))
            with Workers(workers) as pool:  # the workers start while the models export
                with clock("images"):
                    sources = {m.name: model_source(run, m) for m in loaded}
                    planned = _plan(run, sources)
                keras_p = _make_artifacts(run, planned, sources, pool, clock, progress)
            done = assemble(run, planned, sources, keras_p)
            _load_elsewhere(done, run)
            _apply_target(done.rows(), settings.target)
            for fused_entry, fused_rows in done.fused:
                fused_entry.passed = all(row.passed for row in fused_rows)
            with clock("publish"):
                manifest_path = _publish(run, transaction, done)
            _write_cache(out, run.cache)
    if progress:
        progress("done", len(planned), len(planned))
    if settings.verify is None and settings.calib is None:
        run.notes.append("no verification images (--verify DIR): artifacts were not verified")
    return ConversionSummary(
        out=out,
        manifest=manifest_path,
        rows=done.rows(),
        calibration=_describe(run, "calib"),
        verification=_describe(run, "verify" if settings.verify is not None else "calib"),
        notes=run.notes,
        seconds=time.perf_counter() - started,
        load_failures=load_failures,
        timing=_timing(clock, planned, workers),
    )


def _plan(run: RunContext, sources: dict[str, ModelSource]) -> list[Planned]:
    """One job per model and format, then one per shared trunk and format; only what has
    to be converted is exported (just before its first job is handed to a worker), and
    only what has to be compared again is run."""
    formats = run.settings.formats
    planned = [Planned(*model_job(run, s, fmt)) for s in sources.values() for fmt in formats]
    for item, source in zip(planned, (s for s in sources.values() for _ in formats), strict=True):
        if item.job.reuse is None:
            item.prepare = functools.partial(export_model, source)
    if run.settings.fuse:
        trunks = find_shared_trunks([s.model for s in sources.values()])
        for index, trunk in enumerate(t for t in trunks if fusable(t, sources)):
            folder = run.workdir / f"savedmodel-fused-{index}"
            members = [sources[n] for n in trunk.names]
            run.notes.append(
                f"{' and '.join(trunk.names)} share their first {trunk.layers} layers bit for "
                f"bit (up to {trunk.last_shared}, {trunk.shared_params:,} parameters): fused "
                f"as {'+'.join(trunk.names)}.*.tflite"
            )
            fused = [Planned(*fused_job(run, trunk, members, f, folder)) for f in formats]
            for item in fused:
                if item.job.reuse is None:
                    item.prepare = functools.partial(export_trunk, trunk, folder)
            planned += fused
    return _settle(run, planned, sources)


def _settle(
    run: RunContext, planned: list[Planned], sources: dict[str, ModelSource]
) -> list[Planned]:
    """Which jobs run their artifact on the check images: every job but a reused one
    whose verification holds, and the separate artifacts a fused one is compared with."""
    rate = run.settings.max_flip_rate
    rerun = {
        id(p): not settled(run, p.job, sources[p.job.outputs[0].model].verify_key(rate))
        for p in planned
    }
    for fused in (p for p in planned if p.job.fused and rerun[id(p)]):
        for twin in planned:
            same_format = twin.job.format == fused.job.format
            if not twin.job.fused and same_format and twin.job.outputs[0] in fused.job.outputs:
                rerun[id(twin)] = True
    for p in planned:
        p.job = dataclasses.replace(p.job, run_images=rerun[id(p)])
    return planned


def _make_artifacts(
    run: RunContext,
    planned: list[Planned],
    sources: dict[str, ModelSource],
    pool: Workers,
    clock: StepClock,
    progress: Progress | None,
) -> dict[str, np.ndarray]:
    """Run every job (workers > 1: in worker processes, while this process runs the Keras
    models on the verification images); the Keras probabilities per model."""
    keras_p: dict[str, np.ndarray] = {}

    # The Keras models whose artifacts are compared with them again.
    wanted = {o.model for p in planned if p.job.run_images for o in p.job.outputs}

    def keras_pass() -> None:
        todo = [
            s
            for s in sources.values()
            if s.name not in keras_p and s.verify_set is not None and s.name in wanted
        ]
        if not todo:
            return
        with clock("keras"):
            for source in todo:
                assert source.verify_set is not None
                keras_p[source.name] = predict_probabilities(
                    source.model.model, source.verify_set.tensors, KERAS_BATCH
                )

    def done(job: object, outcome: JobOutcome, finished: int, total: int) -> None:
        if progress is not None:
            name = f"{getattr(job, 'name', '?')} {getattr(job, 'format', '')}"
            progress(f"{name} {'ok' if outcome.error is None else 'failed'}", finished, total)

    def cost(job: ArtifactJob) -> float:
        """About how long a job takes: its models' size, times the calibration's passes
        for full int8; the longest start first."""
        size = sum(int(sources[o.model].model.model.count_params()) for o in job.outputs)
        return size * (4.0 if job.format == "int8" else 1.0)

    def prepare(index: int) -> None:
        step = planned[index].prepare
        if step is not None:
            with clock("export"):
                step()

    workers = pool.count
    if progress is not None:
        progress(f"{len(planned)} artifacts, {workers} worker(s)", 0, len(planned))
    jobs = [p.job for p in planned]
    if workers <= 1:
        keras_pass()
        with clock("artifacts"):
            outcomes = pool.run(jobs, done, cost, prepare)
    else:
        failure: list[BaseException] = []

        def guarded() -> None:
            try:
                keras_pass()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(exc)

        thread = threading.Thread(target=guarded, name="hemiface-keras", daemon=True)
        thread.start()
        with clock("artifacts"):
            outcomes = pool.run(jobs, done, cost, prepare)
        thread.join()
        if failure:
            raise failure[0]
    for item, outcome in zip(planned, outcomes, strict=True):
        item.outcome = outcome
    # An artifact planned for reuse that had changed by the time a worker read it was
    # converted again: its model is compared with Keras after all.
    late = {o.model for p in planned if p.result and not p.result.reused for o in p.job.outputs}
    wanted |= late - set(keras_p)
    keras_pass()
    return keras_p


def _publish(run: RunContext, transaction: ModelSetTransaction, done: Assembled) -> Path:
    """The new manifest, committed with the staged files; each row then names the file
    the commit gave its entry."""
    backend = resolve_backend()
    detectors = stage_detectors(run.staging, run.out, run.previous, backend, run.notes)
    models = merge_models(run.previous, [entry for entry, _ in done.models])
    fused = merge_fused(run.previous, [entry for entry, _ in done.fused], models)
    manifest = Manifest(models=models, detectors=detectors, fused=fused)
    path = transaction.commit(manifest)
    for entry, row in done.models:
        row.file = entry.file
    for fused_entry, rows in done.fused:
        for row in rows:
            row.file = fused_entry.file
    return path


def _timing(clock: StepClock, planned: list[Planned], workers: int) -> Timing:
    """Where the run's time went: its own steps (wall time) and the artifacts' steps
    (summed over the artifacts, i.e. CPU-side time in the workers)."""
    per_artifact = dict.fromkeys(STEPS, 0.0)
    for item in planned:
        result = item.result
        for step, seconds in (result.seconds if result is not None else {}).items():
            per_artifact[step] = per_artifact.get(step, 0.0) + seconds
    usage_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    usage_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return Timing(
        workers=workers,
        steps={k: round(v, 2) for k, v in clock.seconds.items()},
        artifact_steps={k: round(v, 2) for k, v in per_artifact.items()},
        peak_rss_mb=round(usage_self / 1024, 1),
        peak_worker_rss_mb=round(usage_children / 1024, 1) if workers > 1 else None,
    )


def _load_models(
    models: list[Path], settings: ConvertSettings
) -> tuple[list[LoadedModel], list[str]]:
    """Every model that loads, and one line for each that does not; when none loads,
    ModelLoadError with every line."""
    loaded: list[LoadedModel] = []
    failures: list[str] = []
    objects = (
        load_custom_objects(settings.custom_objects)
        if settings.custom_objects is not None
        else None
    )
    for index, path in enumerate(models):
        try:
            model = load_keras_model(Path(path), settings.unsafe, settings.output_index, objects)
        except ModelLoadError as exc:
            failures.append(str(exc))
            continue
        if settings.names:
            model.name = settings.names[index]
        loaded.append(model)
    if not loaded:
        raise ModelLoadError("\n".join(failures))
    return loaded, failures


def _describe(run: RunContext, role: str) -> str | None:
    found = [s.description for key, s in run.image_sets.items() if key[0] == role and s]
    return "; ".join(dict.fromkeys(found)) or None


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


def _load_elsewhere(done: Assembled, run: RunContext) -> None:
    """Try every artifact in the other Pythons (e.g. a tflite-runtime 2.14 venv)."""
    pythons = compat.runtime_pythons(list(run.settings.runtime_python or []) or None)
    if not pythons:
        return
    pairs = [(entry, [row]) for entry, row in done.models] + list(done.fused)
    paths = [run.staging / e.file if (run.staging / e.file).exists() else run.out / e.file
             for e, _ in pairs]  # fmt: skip
    for python in pythons:
        results = compat.load_in_python(python, paths)
        for (entry, rows), path in zip(pairs, paths, strict=True):
            entry.loads_in.update(results.get(path, {}))
            for row in rows:
                row.loads_in = entry.loads_in


def _apply_target(rows: list[ConversionRow], target: str | None) -> None:
    """Under --target, an artifact that the target interpreter failed to load fails."""
    if target is None:
        return
    package = target.rsplit("-", 1)[0]
    for row in rows:
        for runtime, result in row.loads_in.items():
            check = LoadCheck.from_manifest(result)
            problem = f"{runtime} could not load it: {check.error}"
            if runtime.startswith(package) and not check.ok and problem not in row.problems:
                row.problems.append(problem)
        row.passed = not row.problems
