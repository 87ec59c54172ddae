"""Named recipes that build the reference models from nothing: synthetic data, a
pretrained MobileNetV2 backbone (train/backbone.py), the users' transfer-learning recipe
on top of it (train/trainer.py: Base = backbone frozen + new head; Fine-tuned = the same
backbone with its upper block unfrozen; the CNN from scratch), then figures on a held-out
test set drawn with a seed no training step used.

`hemiface train --recipe reference --out reference` rebuilds the set this repository
ships; `--recipe quick` is the same pipeline at a size that runs in minutes (and is
reported as far weaker). Every step is resumable: the data, the backbone's pool and
checkpoints live in a work folder, and finished models are reused.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.core.checksum import sha256_file
from hemiface.core.domain import MODEL_FILES, MODEL_TITLES
from hemiface.core.errors import HemifaceError
from hemiface.synth.dataset import LABELS_CSV, generate_dataset, read_labels
from hemiface.train.backbone import (
    BACKBONE_REPORT,
    BACKBONE_WEIGHTS,
    BackboneRecipe,
    Progress,
    Stage,
)
from hemiface.train.config import TrainConfig
from hemiface.train.names import REPORT_JSON

CHECKSUMS = "SHA256SUMS"
HELDOUT_JSON = "heldout_report.json"


@dataclass(frozen=True)
class Recipe:
    name: str
    backbone: BackboneRecipe
    data_images: int  # the synthetic set the heads and the CNN train on (70/15/15 split)
    data_seed: int
    heldout_images: int  # a test-only set from a seed used nowhere in training
    heldout_seed: int
    train: TrainConfig
    workers: int = 2

    def command(self, out: Path) -> str:
        return f"hemiface train --recipe {self.name} --out {out}"


# Seeds: 11 the head/CNN data, 1001/1002 the backbone's pool and monitoring faces, 4242 the
# held-out test set. The demo draws its faces with seed 0, so none of its images is one the
# shipped models trained on (face i of a seed is the same face whatever the set's size).
REFERENCE = Recipe(
    name="reference",
    backbone=BackboneRecipe(),
    data_images=6000,
    data_seed=11,
    heldout_images=1000,
    heldout_seed=4242,
    train=TrainConfig(
        mobilenet_train_images=None,
        cnn_train_images=None,
        head_epochs=30,
        finetune_epochs=30,
        cnn_epochs=24,
        patience=8,
    ),
)
QUICK = Recipe(
    name="quick",
    backbone=replace(
        BackboneRecipe(),
        name="synthetic-faces-quick",
        pool_images=3000,
        val_images=200,
        stages=(Stage(96, 400, 2e-3, warmup_steps=40), Stage(224, 30, 5e-4)),
        checkpoint_steps=50,
    ),
    data_images=600,
    data_seed=11,
    heldout_images=200,
    heldout_seed=4242,
    train=TrainConfig(head_epochs=15, finetune_epochs=8, cnn_epochs=10, patience=4),
)
RECIPES = {recipe.name: recipe for recipe in (REFERENCE, QUICK)}


def recipe_named(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise HemifaceError(
            f"unknown recipe {name!r} (choose from {', '.join(sorted(RECIPES))})"
        ) from None


def _ensure_data(
    folder: Path,
    count: int,
    seed: int,
    split: tuple[float, float, float],
    workers: int,
    progress: Progress | None,
    what: str,
) -> None:
    if (folder / LABELS_CSV).is_file() and len(read_labels(folder)) == count:
        settings = json.loads((folder / "synth.json").read_text())
        if settings.get("seed") == seed:
            return
    generate_dataset(
        folder,
        count,
        seed=seed,
        split=split,
        overwrite=True,
        workers=workers,
        progress=(lambda done: progress(what, done, count)) if progress else None,
    )


def write_checksums(out: Path) -> dict[str, str]:
    sums = {file: sha256_file(out / file) for file in MODEL_FILES.values()}
    text = "".join(f"{digest}  {file}\n" for file, digest in sums.items())
    temporary = out / (CHECKSUMS + ".partial")
    temporary.write_text(text)
    os.replace(temporary, out / CHECKSUMS)
    return sums


def read_checksums(folder: Path) -> dict[str, str]:
    """file -> sha256 from FOLDER/SHA256SUMS; HemifaceError names what is wrong."""
    path = folder / CHECKSUMS
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise HemifaceError(f"{path}: cannot read ({exc.strerror or exc})") from None
    sums: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise HemifaceError(f"{path}: line {number} is not '<sha256>  <file>'")
        sums[parts[1]] = parts[0]
    return sums


def verify_checksums(folder: Path) -> dict[str, str]:
    """Check every model file of a reference folder against its SHA256SUMS."""
    sums = read_checksums(folder)
    for file in MODEL_FILES.values():
        if file not in sums:
            raise HemifaceError(f"{folder / CHECKSUMS}: no checksum for {file}")
        path = folder / file
        if not path.is_file():
            raise HemifaceError(f"{path}: missing from the reference set")
        if sha256_file(path) != sums[file]:
            raise HemifaceError(f"{path}: sha256 differs from {CHECKSUMS} (file changed?)")
    return sums


@dataclass
class HeldoutFigures:
    seed: int
    images: int
    models: dict[str, dict[str, object]] = field(default_factory=dict)


def evaluate_heldout(
    models_dir: Path, data: Path, seed: int, batch: int = 32, progress: Progress | None = None
) -> HeldoutFigures:
    """Accuracy, ROC AUC, flip consistency and accuracy by severity of each model on a
    test-only synthetic set (DATA/test)."""

    from hemiface.kerasio import load_keras_model
    from hemiface.train.data import load_split
    from hemiface.train.metrics import evaluate
    from hemiface.train.trainer import forward

    test = load_split(data, "test", 224)
    figures = HeldoutFigures(seed=seed, images=len(test))
    for name, file in MODEL_FILES.items():
        model = load_keras_model(models_dir / file).model
        p = forward(model, test.images, batch, f"held-out: {MODEL_TITLES[name]}", progress)
        p_flip = forward(
            model,
            test.flipped().images,
            batch,
            f"held-out: {MODEL_TITLES[name]} (mirrored)",
            progress,
        )
        figures.models[name] = asdict(evaluate(test.labels, p, p_flip, test.severity))
    return figures


def build_recipe(
    recipe: Recipe, out: Path, work: Path, force: bool = False, progress: Progress | None = None
) -> dict[str, Any]:
    """Run the whole recipe into OUT (models, reports, SHA256SUMS); returns a summary."""
    from hemiface.train.backbone import pretrain_backbone
    from hemiface.train.trainer import train_all

    started = time.perf_counter()
    out, work = Path(out), Path(work)
    work.mkdir(parents=True, exist_ok=True)
    data, heldout = work / "data", work / "heldout"
    _ensure_data(
        data,
        recipe.data_images,
        recipe.data_seed,
        (0.7, 0.15, 0.15),
        recipe.workers,
        progress,
        "rendering training faces",
    )
    earlier = None if force else _earlier_backbone(out)
    if earlier is None:
        backbone = pretrain_backbone(work / "backbone", recipe.backbone, progress)
        weights = work / "backbone" / BACKBONE_WEIGHTS
        if not weights.is_file():
            raise HemifaceError(f"{weights}: the backbone did not finish (rerun to resume)")
        earlier = _backbone_summary(recipe, backbone)
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / "backbone" / BACKBONE_REPORT, out / BACKBONE_REPORT)
    else:
        # Base and Fine-tuned are in OUT and valid: they are reused as they are, so the
        # backbone they were built on is not needed again (a CNN-only rebuild).
        weights = work / "backbone" / BACKBONE_WEIGHTS
    report = train_all(
        data, out, weights=str(weights), force=force, progress=progress, config=recipe.train
    )
    _ensure_data(
        heldout,
        recipe.heldout_images,
        recipe.heldout_seed,
        (0.0, 0.0, 1.0),
        recipe.workers,
        progress,
        "rendering held-out faces",
    )
    figures = evaluate_heldout(out, heldout, recipe.heldout_seed, progress=progress)
    sums = write_checksums(out)
    summary: dict[str, Any] = {
        "recipe": recipe.name,
        "command": recipe.command(out),
        "recipe_settings": asdict(recipe),
        "backbone": earlier,
        "heads_and_cnn_wall_time_s": round(report.wall_time_s, 1),
        "heldout": asdict(figures),
        "sha256": sums,
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
    (out / HELDOUT_JSON).write_text(json.dumps(summary, indent=2, default=_plain) + "\n")
    (out / "README.md").write_text(render_readme(summary))
    return summary


def _backbone_summary(recipe: Recipe, backbone: Any) -> dict[str, object]:
    return {
        "recipe": recipe.backbone.name,
        "steps": backbone.steps_done,
        "images_seen": backbone.images_seen,
        "train_time_s": round(backbone.train_time_s, 1),
        "val_accuracy_224": backbone.val_accuracy_224,
        "val_accuracy_by_stage": _last_val_by_stage(backbone.history),
    }


def _earlier_backbone(out: Path) -> dict[str, object] | None:
    """The backbone figures of an earlier build in OUT, when its Base and Fine-tuned
    models are there and valid (they are then reused, and their backbone with them)."""
    from hemiface.train.models import check_model_file

    names = ("mobilenetv2_base_model", "mobilenetv2_finetuned_model")
    if any(
        not (out / MODEL_FILES[n]).is_file() or check_model_file(out / MODEL_FILES[n], 224)
        for n in names
    ):
        return None
    try:
        earlier = json.loads((out / HELDOUT_JSON).read_text())["backbone"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return earlier if isinstance(earlier, dict) and (out / BACKBONE_REPORT).is_file() else None


def render_readme(summary: dict[str, Any]) -> str:
    """A page for the folder: what the models are, how good, how to rebuild them."""
    heldout = summary["heldout"]
    backbone = summary["backbone"]
    assert isinstance(heldout, dict) and isinstance(backbone, dict)
    rows = []
    for name, m in heldout["models"].items():
        bands = m.get("accuracy_by_severity", {})
        band_text = " / ".join(
            f"{bands[b]['accuracy']:.3f}" if b in bands else "-"
            for b in ("subtle", "moderate", "marked")
        )
        rows.append(
            f"| {MODEL_TITLES[name]} | `{MODEL_FILES[name]}` | {m['accuracy']:.3f} | "
            f"{m['roc_auc']:.3f} | {m['flip_consistency']:.3f} | {band_text} |"
        )
    sums = summary["sha256"]
    assert isinstance(sums, dict)
    return "\n".join(
        [
            f"# Reference models (recipe '{summary['recipe']}')",
            "",
            "The three models `hemiface demo` runs on by default, in the users' names and "
            "formats. They were trained on synthetic faces only (`hemiface synth`): they are "
            "stand-ins for the users' models, for research and teaching, not a medical device.",
            "",
            "- **Base**: MobileNetV2 1.0 (224x224x3, input in [0, 1]) frozen, with a new head "
            "(global average pooling, dropout, Dense(1, sigmoid) = P(Right)).",
            "- **Fine-tuned**: the same backbone with its upper block (from "
            "`block_16_expand` on) trained; every layer below is bit-identical to Base "
            "(weights and BatchNorm statistics).",
            "- **CNN**: a small custom CNN trained from scratch.",
            "",
            "The backbone stands in for ImageNet weights (which cannot be fetched here): "
            f"MobileNetV2 trained from scratch on {backbone['images_seen']} synthetic faces "
            f"({backbone['steps']} steps, {backbone['train_time_s']:.0f} s; recipe "
            f"'{backbone['recipe']}', first at 96 px, then at 224 px), with mirrored faces "
            "whose labels are swapped.",
            "",
            f"Held-out test set: {heldout['images']} faces drawn with seed {heldout['seed']}, "
            "which no training step used (accuracy at threshold 0.5; flip consistency is "
            "mean |p(mirror x) - (1 - p(x))|; severity bands subtle < 0.4 <= moderate < 0.7 "
            "<= marked):",
            "",
            "| model | file | accuracy | ROC AUC | flip consistency | subtle / moderate / marked |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
            f"Rebuild (training took {float(backbone['train_time_s']) / 60:.0f} min for the "
            f"backbone and {float(summary['heads_and_cnn_wall_time_s']) / 60:.0f} min for the "
            "heads and the CNN on the 2-core machine that built this set; every step "
            "resumes where it stopped):",
            "",
            "```bash",
            str(summary["command"]),
            "```",
            "",
            "sha256 (also in `SHA256SUMS`, checked by `hemiface demo` before use):",
            "",
            *[f"- `{file}`: `{digest}`" for file, digest in sums.items()],
            "",
            "More: `training_report.md` (training figures of the heads and the CNN), "
            "`heldout_report.json` (everything above, with the recipe's settings).",
            "",
        ]
    )


def _last_val_by_stage(history: list[dict[str, float]]) -> dict[str, float]:
    last: dict[str, float] = {}
    for entry in history:
        last[f"{int(entry['size'])}px"] = round(float(entry["val_accuracy"]), 4)
    return last


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def report_path(out: Path) -> Path:
    return Path(out) / REPORT_JSON
