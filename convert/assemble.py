"""From artifact results to manifest entries and summary rows: verification against the
Keras sources, the gates, and the merge with what the set held before.

Gates, each one making an artifact fail (it is still written; the runtime ignores a failed
fused artifact, and the CLI exits non-zero):
- every output passes verification (--max-flip-rate);
- under --target, the target's op-version limits;
- a fused float32 output is exact: within `FLOAT32_EXACT` of the model's separate float32
  artifact on the same images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hemiface.convert.artifact import ArtifactJob, ArtifactResult
from hemiface.convert.jobs import JobOutcome
from hemiface.convert.plan import ModelSource, RunContext, previous_entry
from hemiface.convert.summary import ConversionRow
from hemiface.convert.verify import compare_with_source
from hemiface.runtime.manifest import (
    DEFAULT_LABELS,
    FusedEntry,
    Manifest,
    ModelEntry,
    Verification,
)

FLOAT32_EXACT = 1e-5  # max |p(fused) - p(separate)| allowed for float32
# How a model without an entry of its own decides (the manifest's defaults).
DEFAULT_THRESHOLD = 0.5
DEFAULT_POSITIVE = "Right"


@dataclass
class Planned:
    """One artifact of the run: its job, its cache key and, once made, its outcome."""

    job: ArtifactJob
    key: str
    outcome: JobOutcome | None = None
    prepare: Callable[[], None] | None = None  # exports what the job converts from (once)

    @property
    def result(self) -> ArtifactResult | None:
        return self.outcome.result if self.outcome is not None else None


@dataclass
class Assembled:
    """The run's new entries, each beside the summary rows that report it."""

    models: list[tuple[ModelEntry, ConversionRow]]
    fused: list[tuple[FusedEntry, list[ConversionRow]]]
    failed: list[ConversionRow]

    def rows(self) -> list[ConversionRow]:
        """Every summary row: the models', the fused artifacts', then those that failed."""
        fused = [row for _, rows in self.fused for row in rows]
        return [row for _, row in self.models] + fused + self.failed


def assemble(
    run: RunContext,
    planned: list[Planned],
    sources: dict[str, ModelSource],
    keras_p: dict[str, np.ndarray],
) -> Assembled:
    done = Assembled([], [], [])
    separate = {(p.job.name, p.job.format): p for p in planned if not p.job.fused}
    for item in planned:
        result, job = item.result, item.job
        if result is None:
            reason = item.outcome.error if item.outcome else "not run"
            done.failed.append(_failed_row(job, sources, reason or "failed"))
            continue
        entry = result.entry
        verify_key = sources[job.outputs[0].model].verify_key(run.settings.max_flip_rate)
        prev = previous_entry(run, job.name, job.format)
        same = result.reused and run.cache.get(job.file, {}).get("verify") == verify_key
        problems: list[str] = []
        if isinstance(entry, FusedEntry):
            if same and isinstance(prev, FusedEntry):
                entry.verification = dict(prev.verification)
                entry.max_abs_dp_vs_separate = dict(prev.max_abs_dp_vs_separate)
            else:
                _verify_fused(run, entry, result, sources, keras_p, separate, problems)
        elif same and isinstance(prev, ModelEntry):
            entry.verification = prev.verification
        else:
            entry.verification = _verification(run, sources[entry.name], keras_p, result, 0, entry)
        run.cache[job.file] = {"key": item.key, "sha256": entry.sha256, "verify": verify_key}
        problems += [result.target_problem] if result.target_problem else []
        problems += _flip_problems(entry, run.settings.max_flip_rate)
        if isinstance(entry, FusedEntry):
            entry.passed = not problems
            rows = [_row(job, entry, result, sources, o.model, problems) for o in job.outputs]
            done.fused.append((entry, rows))
        else:
            done.models.append((entry, _row(job, entry, result, sources, entry.name, problems)))
    return done


def _verification(
    run: RunContext,
    source: ModelSource,
    keras_p: dict[str, np.ndarray],
    result: ArtifactResult,
    column: int,
    decides: ModelEntry | None,
) -> Verification | None:
    """The artifact's output `column` against its Keras source; `decides` is the model's
    entry, whose threshold and positive label turn probabilities into labels."""
    verify_set = source.verify_set
    if verify_set is None or source.name not in keras_p:
        return None
    threshold = decides.threshold if decides is not None else DEFAULT_THRESHOLD
    labels = decides.labels if decides is not None else list(DEFAULT_LABELS)
    positive = decides.positive_label if decides is not None else DEFAULT_POSITIVE
    return compare_with_source(
        keras_p[source.name],
        result.probabilities[:, column],
        threshold,
        verify_set.labels,
        verify_set.description,
        result.latency_ms,
        positive_index=labels.index(positive),
        max_flip_rate=run.settings.max_flip_rate,
    )


def _verify_fused(
    run: RunContext,
    entry: FusedEntry,
    result: ArtifactResult,
    sources: dict[str, ModelSource],
    keras_p: dict[str, np.ndarray],
    separate: dict[tuple[str, str], Planned],
    problems: list[str],
) -> None:
    """Each output against its Keras source and against the model's separate artifact."""
    for column, output in enumerate(entry.outputs):
        name = output.model
        twin = separate.get((name, entry.format))
        twin_result = twin.result if twin is not None else None
        own = twin_result.entry if twin_result is not None else None
        decides = own if isinstance(own, ModelEntry) else None
        verification = _verification(run, sources[name], keras_p, result, column, decides)
        if verification is not None:
            entry.verification[name] = verification
        if twin_result is None or len(twin_result.probabilities) != len(result.probabilities):
            problems.append(f"{name}: no separate {entry.format} artifact to compare with")
            continue
        dp = np.abs(result.probabilities[:, column] - twin_result.probabilities[:, 0])
        entry.max_abs_dp_vs_separate[name] = float(np.max(dp)) if dp.size else 0.0
    if entry.format == "float32":
        for name, dp in entry.max_abs_dp_vs_separate.items():
            if not dp <= FLOAT32_EXACT:  # NaN fails too
                problems.append(
                    f"{name}: the fused float32 output differs from the separate artifact by "
                    f"{dp:.2e} (more than {FLOAT32_EXACT:g})"
                )


def _flip_problems(entry: ModelEntry | FusedEntry, max_flip_rate: float | None) -> list[str]:
    checks: dict[str, Verification | None]
    if isinstance(entry, FusedEntry):
        checks = dict(entry.verification)
    else:
        checks = {entry.name: entry.verification}
    prefix = isinstance(entry, FusedEntry)
    return [
        f"{name + ': ' if prefix else ''}{v.flips} of {v.n_images} labels flipped, over "
        f"--max-flip-rate {max_flip_rate}"
        for name, v in checks.items()
        if v is not None and not v.passed
    ]


def _row(
    job: ArtifactJob,
    entry: ModelEntry | FusedEntry,
    result: ArtifactResult,
    sources: dict[str, ModelSource],
    model: str,
    problems: list[str],
) -> ConversionRow:
    fused = isinstance(entry, FusedEntry)
    title = sources[model].output().title
    if isinstance(entry, FusedEntry):  # a fused entry verifies each of its outputs
        verification = entry.verification.get(model)
    else:
        verification = entry.verification
    members = [o.model for o in job.outputs]
    return ConversionRow(
        name=model,
        title=f"{title} (fused)" if fused else title,
        format=entry.format,
        file=entry.file,
        sha256=entry.sha256,
        size_bytes=entry.size_bytes,
        source_bytes=sum(sources[m].source_bytes for m in members),
        seconds=0.0 if result.reused else round(result.seconds.get("convert", 0.0), 3),
        reused=result.reused,
        min_runtime=entry.min_runtime,
        loads_in=entry.loads_in,
        verification=verification,
        passed=not problems,
        problems=list(problems),
    )


def _failed_row(job: ArtifactJob, sources: dict[str, ModelSource], reason: str) -> ConversionRow:
    model = job.outputs[0].model
    title = sources[model].output().title
    return ConversionRow(
        name=model,
        title=f"{title} (fused)" if job.fused else title,
        format=job.format,
        file=job.file,
        sha256="",
        size_bytes=0,
        source_bytes=sum(sources[o.model].source_bytes for o in job.outputs),
        seconds=0.0,
        reused=False,
        min_runtime="",
        loads_in={},
        verification=None,
        passed=False,
        problems=[reason],
    )


def merge_models(previous: Manifest | None, entries: list[ModelEntry]) -> list[ModelEntry]:
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


def merge_fused(
    previous: Manifest | None, entries: list[FusedEntry], models: list[ModelEntry]
) -> list[FusedEntry]:
    """New fused entries replace old ones of the same name and format; old ones stay only
    while every model they serve is still in the set, of the same format, from the same
    source."""
    sources = {(m.name, m.format): m.source.sha256 if m.source else "" for m in models}
    new_keys = {(e.name, e.format) for e in entries}
    kept = []
    for old in previous.fused if previous else []:
        if (old.name, old.format) in new_keys:
            continue
        if all(
            o.source is not None and sources.get((o.model, old.format)) == o.source.sha256
            for o in old.outputs
        ):
            kept.append(old)
    return kept + entries
