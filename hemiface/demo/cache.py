"""The demo's stage cache: a stage whose inputs are unchanged since an earlier run, and
whose outputs still exist, reuses that run's record instead of running again.

OUT/.cache/<stage>.json holds {"fingerprint", "outputs"}; the fingerprint is each input
file's path, size and modification time with the settings that change the outputs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from hemiface.core.domain import LABELS
from hemiface.demo.context import DemoContext
from hemiface.demo.results import ResultFormatError, StageOutput

CACHE_FOLDER = ".cache"


def fingerprint(paths: list[Path], extra: str) -> str:
    """What a stage's inputs are: each file's path, size and modification time."""
    digest = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        stat = path.stat() if path.exists() else None
        digest.update(
            f"{path}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}".encode()
        )
    return digest.hexdigest()


def cache_files(ctx: DemoContext, name: str) -> tuple[list[Path], list[Path]] | None:
    """(input files, output files that must still exist) of a stage worth caching; None
    for a stage that is not cached."""
    model_files = ctx.keras_files() if name in ("train", "convert", "explain", "bench") else []
    if name == "train":
        if not ctx.retrain:
            return None  # checking the shipped set's checksums is the stage itself
        return [], [*model_files, ctx.models / "heldout_report.json"]
    if name == "convert":
        # The set is made from the models and the data (calibration and verification).
        return [*model_files, ctx.data / "labels.csv"], [ctx.modelset / "hemiface.json"]
    if name == "drift":
        # The artifacts (through the manifest), the test faces and explain's IG maps.
        ig = [ctx.out / "explain" / label.lower() / "explain.json" for label in LABELS]
        return [ctx.modelset / "hemiface.json", ctx.data / "labels.csv", *ig], [
            ctx.out / "drift" / "drift.json"
        ]
    if name == "explain":
        return [*model_files, ctx.data / "labels.csv"], [
            ctx.out / "explain" / label.lower() / "explain.json" for label in LABELS
        ]
    if name == "bench":
        manifest = ctx.modelset / "hemiface.json"
        return [*model_files, manifest], [ctx.out / "bench" / "results.json"]
    return None


def stage_fingerprint(ctx: DemoContext, name: str) -> str | None:
    """The stage's fingerprint now, or None for a stage that is not cached."""
    files = cache_files(ctx, name)
    if files is None:
        return None
    return fingerprint(files[0], f"{name}|quick={ctx.quick}|models={ctx.models}")


def cached_output(ctx: DemoContext, name: str, kind: type[StageOutput]) -> StageOutput | None:
    """The record of an earlier run whose inputs are unchanged and whose outputs exist."""
    files = cache_files(ctx, name)
    current = stage_fingerprint(ctx, name)
    if files is None or current is None:
        return None
    try:
        record = json.loads((ctx.out / CACHE_FOLDER / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None  # no record, or a half-written one: run the stage
    if not isinstance(record, dict) or record.get("fingerprint") != current:
        return None
    if not all(path.exists() for path in files[1]):
        return None
    try:
        return kind.from_json(record.get("outputs"))
    except ResultFormatError:
        return None  # written by a version whose record had other fields: run again


def remember(ctx: DemoContext, name: str, output: StageOutput) -> None:
    """Record a stage's output under its fingerprint taken now (after the stage ran:
    train rewrites what later stages read)."""
    current = stage_fingerprint(ctx, name)
    if current is None:
        return
    folder = ctx.out / CACHE_FOLDER
    folder.mkdir(exist_ok=True)
    record: dict[str, Any] = {"fingerprint": current, "outputs": output.to_json()}
    (folder / f"{name}.json").write_text(json.dumps(record, default=str))
