"""Run the demo's stages in order, each cached when its inputs are unchanged.

A stage that fails is reported; stages that do not depend on it still run. The runner
writes OUT/demo.json (every stage's status, time and record) and the walk-through
(OUT/index.md and OUT/index.html).
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from hemiface.core.errors import HemifaceError, one_line
from hemiface.demo import stages
from hemiface.demo.cache import cached_output, remember
from hemiface.demo.context import DemoContext, StageProgress
from hemiface.demo.drift_stage import DriftOutput, stage_drift
from hemiface.demo.results import (
    BenchOutput,
    ConvertOutput,
    DataOutput,
    ExplainOutput,
    RuntimeOutput,
    StageOutput,
    TrainOutput,
)

OutputT = TypeVar("OutputT", bound=StageOutput)


@dataclass
class StageResult:
    name: str
    status: str = "pending"  # ok | failed | skipped
    seconds: float = 0.0
    detail: str = ""
    outputs: StageOutput | None = None  # the stage's record when status is "ok"

    def output(self, kind: type[OutputT]) -> OutputT:
        """The stage's record as `kind`; a stage that did not succeed has none."""
        if not isinstance(self.outputs, kind):
            raise TypeError(
                f"stage {self.name!r} ({self.status}) has no {kind.__name__} record: "
                f"{type(self.outputs).__name__}"
            )
        return self.outputs

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "seconds": round(self.seconds, 1),
            "detail": self.detail,
            "outputs": self.outputs.to_json() if self.outputs is not None else {},
        }


@dataclass(frozen=True)
class Stage(Generic[OutputT]):
    name: str
    run: Callable[[DemoContext], OutputT]
    output: type[OutputT]
    needs: tuple[str, ...]  # the stages whose outputs it reads


STAGES: tuple[Stage[Any], ...] = (
    Stage("data", stages.stage_data, DataOutput, ()),
    Stage("train", stages.stage_train, TrainOutput, ("data",)),
    Stage("convert", stages.stage_convert, ConvertOutput, ("data", "train")),
    Stage("runtime", stages.stage_runtime, RuntimeOutput, ("data", "convert")),
    Stage("explain", stages.stage_explain, ExplainOutput, ("data", "train")),
    Stage("bench", stages.stage_bench, BenchOutput, ("data", "train", "convert")),
    Stage("drift", stage_drift, DriftOutput, ("data", "convert")),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)


def run_stage(ctx: DemoContext, stage: Stage[Any]) -> StageResult:
    """Run one stage (or reuse its cached record); never raises for the stage's failure."""
    result = StageResult(stage.name)
    started = time.perf_counter()
    (ctx.out / f"{stage.name}.error.txt").unlink(missing_ok=True)
    try:
        cached = cached_output(ctx, stage.name, stage.output)
        if cached is not None:
            result.outputs, result.detail = cached, "cached: inputs unchanged"
        else:
            result.outputs = stage.run(ctx)
            remember(ctx, stage.name, result.outputs)
        result.status = "ok"
    except HemifaceError as exc:
        result.status, result.detail = "failed", str(exc)
    except Exception as exc:  # noqa: BLE001 - one stage must not stop the others
        result.status = "failed"
        result.detail = f"{type(exc).__name__}: {one_line(exc)}"
        (ctx.out / f"{stage.name}.error.txt").write_text(traceback.format_exc())
    result.seconds = time.perf_counter() - started
    return result


def run_demo(
    out: Path,
    quick: bool,
    progress: StageProgress,
    on_stage: Callable[[StageResult], None] | None = None,
    retrain: bool = False,
    stage_list: tuple[Stage[Any], ...] = STAGES,
) -> dict[str, StageResult]:
    """Run every stage in order, then write demo.json and the walk-through."""
    from hemiface.demo.index import write_index

    ctx = DemoContext(Path(out), quick, progress, retrain=retrain)
    ctx.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, StageResult] = {}
    for stage in stage_list:
        failed = [n for n in stage.needs if results[n].status != "ok"]
        if failed:
            result = StageResult(stage.name, "skipped", detail=f"needs {', '.join(failed)}")
        else:
            result = run_stage(ctx, stage)
        results[stage.name] = result
        if on_stage:
            on_stage(result)
    write_index(ctx.out, results, quick)
    summary = {name: result.to_json() for name, result in results.items()}
    (ctx.out / "demo.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return results
