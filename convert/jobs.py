"""Artifacts side by side: worker processes, bounded by the machine's cores and memory.

Each artifact is one `ArtifactJob`, made by `artifact.make_artifact` in a worker process
(spawned, never forked: the parent has TensorFlow's threads running). Results come back in
the order the jobs were given, whatever order they finish in, so a parallel run writes
the same model set as a serial one. One worker means no pool at all: the jobs run in the
calling process, which is also what small models get by default, because starting a
worker costs an import of TensorFlow (about 5 s) that a tiny model's whole conversion
does not.

A job that fails with a `HemifaceError` (the converter refused the model, say) is one
failed artifact, reported with the others; any other exception stops the run.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from functools import partial

from hemiface.convert.artifact import ArtifactJob, ArtifactResult, make_artifact
from hemiface.core.errors import HemifaceError, one_line

# A worker converting and verifying a MobileNetV2 (TensorFlow, the converter, the
# calibration and an interpreter) peaked near this much resident memory here.
WORKER_MEMORY_BYTES = 2 * 2**30
# Below this many parameters over all models, a worker's start costs more than it saves.
PARALLEL_MIN_PARAMS = 1_000_000

Done = Callable[[ArtifactJob, "JobOutcome", int, int], None]  # (job, outcome, done, total)


@dataclass
class JobOutcome:
    """A job's result, or the one-line reason it failed."""

    result: ArtifactResult | None
    error: str | None = None


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes the kernel says can be used without swapping (MemAvailable), when known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def default_workers(jobs: int, total_params: int) -> int:
    """Worker processes for `jobs` artifacts of models with `total_params` parameters."""
    if jobs <= 1 or total_params < PARALLEL_MIN_PARAMS:
        return 1
    memory = available_memory()
    by_memory = jobs if memory is None else max(1, memory // WORKER_MEMORY_BYTES)
    return max(1, min(cores(), by_memory, jobs))


class Workers:
    """A pool of `count` worker processes, started on entry so that their import of
    TensorFlow overlaps whatever the caller does next (exporting the models); with one
    worker there is no pool and the jobs run in the calling process."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Workers:
        if self.count > 1:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self.count, mp_context=context, initializer=_warm_worker
            )
            for _ in range(self.count):  # start every worker now, not at the first job
                self._pool.submit(os.getpid)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def run(
        self,
        jobs: list[ArtifactJob],
        done: Done | None = None,
        cost: Callable[[ArtifactJob], float] | None = None,
        prepare: Callable[[int], None] | None = None,
    ) -> list[JobOutcome]:
        """Every job's outcome, in the order of `jobs`. The most costly jobs (by `cost`)
        start first, so that a long one does not start last and leave a core idle.
        `prepare(i)` runs here just before job i is handed out (exporting what it is
        converted from), so the workers convert while the next export is made."""
        outcomes: list[JobOutcome | None] = [None] * len(jobs)
        finished = 0

        def record(index: int, outcome: JobOutcome) -> None:
            nonlocal finished
            outcomes[index] = outcome
            finished += 1
            if done is not None:
                done(jobs[index], outcome, finished, len(jobs))

        order = list(range(len(jobs)))
        if cost is not None:
            order.sort(key=lambda i: -cost(jobs[i]))
        if self._pool is None:
            for index in order:
                if prepare is not None:
                    prepare(index)
                record(index, _outcome(partial(make_artifact, jobs[index])))
            return [o for o in outcomes if o is not None]
        pending: dict[Future[ArtifactResult], int] = {}
        try:
            for index in order:
                if prepare is not None:
                    prepare(index)
                pending[self._pool.submit(make_artifact, jobs[index])] = index
            while pending:
                ready, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in ready:
                    index = pending.pop(future)
                    record(index, _outcome(future.result))
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        return [o for o in outcomes if o is not None]


def _outcome(get: Callable[[], ArtifactResult]) -> JobOutcome:
    try:
        return JobOutcome(get())
    except HemifaceError as exc:
        return JobOutcome(None, one_line(exc))


def _warm_worker() -> None:
    """Import TensorFlow now, quietly (its start-up chatter stays out of the parent's
    terminal), while the parent is still exporting the models."""
    from hemiface.kerasio import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow  # noqa: F401
