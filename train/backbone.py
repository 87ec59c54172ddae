"""A MobileNetV2 backbone trained from scratch on synthetic faces: the stand-in for the
ImageNet weights the users' models start from, where ImageNet cannot be fetched.

The users' recipe is transfer learning: an ImageNet MobileNetV2, frozen (Base) or with its
upper blocks unfrozen (Fine-tuned), under a new head. A randomly initialised frozen
backbone gives features that carry no signal, and the two models then sit at chance. So
the backbone is pretrained here, once, on a large pool of freshly rendered synthetic faces
(never the images the heads are later trained or tested on): the whole network trains,
first at a low resolution (MobileNetV2 is fully convolutional; on a 2-core CPU a training
step at 96 px runs about 5x faster than at 224 px), then for a short stretch at 224 px so
BatchNorm statistics and filters settle at the resolution the models run at. Every batch
mirrors half its faces and swaps their labels (a mirrored droop is on the other side of
the patient).

Resumable: the pool is cached as .npy files and the model with its optimizer state is
checkpointed every `checkpoint_steps`; a rerun continues where the last one stopped.
The result is a no-top MobileNetV2 weights file that `hemiface train --weights PATH` loads.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from hemiface.kerasio import predict_batched, quiet_tensorflow  # noqa: E402

quiet_tensorflow()

import keras  # noqa: E402

from hemiface.synth.dataset import render_job  # noqa: E402

log = logging.getLogger("hemiface.train")
Progress = Callable[[str, int, int], None]  # (stage, done, total)
FULL_SIZE = 224
BACKBONE_WEIGHTS = "mobilenetv2_backbone.weights.h5"
BACKBONE_REPORT = "backbone_report.json"


@dataclass(frozen=True)
class Stage:
    """A stretch of training at one input resolution."""

    size: int
    steps: int
    learning_rate: float  # peak; cosine decay to `final_fraction` of it over the stage
    final_fraction: float = 0.02
    warmup_steps: int = 0


@dataclass(frozen=True)
class BackboneRecipe:
    """Everything that determines the backbone: same recipe, same seed, same weights
    (up to floating-point non-determinism of multi-threaded kernels)."""

    name: str = "synthetic-faces-v1"
    # Seeds of the pool and of the monitoring set; `hemiface synth` data sets for the heads
    # and the held-out test use other seeds, so the backbone never sees those faces.
    seed: int = 1001
    val_seed: int = 1002
    pool_images: int = 40000
    val_images: int = 600
    batch_size: int = 32
    stages: tuple[Stage, ...] = (
        Stage(96, 3000, 2e-3, warmup_steps=150),
        Stage(224, 600, 5e-4),
    )
    batchnorm_momentum: float = 0.99
    dropout: float = 0.2
    checkpoint_steps: int = 100
    workers: int = 2

    @property
    def total_steps(self) -> int:
        return sum(stage.steps for stage in self.stages)


RECIPES: dict[str, BackboneRecipe] = {"synthetic-faces-v1": BackboneRecipe()}


@dataclass
class Pool:
    images: np.ndarray  # (N, 224, 224, 3) uint8 RGB
    labels: np.ndarray  # (N,) float32, 1.0 = Right
    severity: np.ndarray  # (N,) float32


def build_pool(
    folder: Path, name: str, seed: int, count: int, workers: int, progress: Progress | None = None
) -> Pool:
    """Render `count` faces (cached in `folder` as name_{images,labels,severity}.npy)."""
    paths = {k: folder / f"{name}_{k}.npy" for k in ("images", "labels", "severity")}
    if all(p.is_file() for p in paths.values()):
        if len(np.load(paths["images"], mmap_mode="r")) == count:
            # Read whole into memory: batches pick faces at random all over the pool.
            return Pool(
                np.load(paths["images"]), np.load(paths["labels"]), np.load(paths["severity"])
            )
    images = np.empty((count, FULL_SIZE, FULL_SIZE, 3), np.uint8)
    labels = np.empty(count, np.float32)
    severity = np.empty(count, np.float32)
    jobs = [(seed, i, FULL_SIZE) for i in range(count)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(max(1, workers)) as pool:
        for i, (rgb, label, sev) in enumerate(pool.imap(render_job, jobs, chunksize=32)):
            images[i], labels[i], severity[i] = rgb, label, sev
            if progress and (i % 200 == 0 or i == count - 1):
                progress(f"rendering {name} faces", i + 1, count)
    folder.mkdir(parents=True, exist_ok=True)
    for key, array in (("images", images), ("labels", labels), ("severity", severity)):
        temporary = paths[key].with_name(paths[key].stem + ".partial.npy")
        np.save(temporary, array)
        os.replace(temporary, paths[key])
    return Pool(images, labels, severity)


def build_pretraining_model(recipe: BackboneRecipe, seed: int) -> tuple[keras.Model, keras.Model]:
    """(model, backbone): [0, 1] pixels of any size -> Rescaling to [-1, 1] -> MobileNetV2
    1.0 without top (random init) -> pooling, dropout, Dense(1, sigmoid)."""
    keras.utils.set_random_seed(seed)
    backbone = keras.applications.MobileNetV2(
        include_top=False, weights=None, alpha=1.0, input_shape=(None, None, 3)
    )
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = recipe.batchnorm_momentum
    inputs = keras.Input((None, None, 3), name="image")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_minus1_1")(inputs)
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    x = keras.layers.Dropout(recipe.dropout, name="dropout")(x)
    output = keras.layers.Dense(1, activation="sigmoid", name="droop_side")(x)
    model = keras.Model(inputs, output, name="backbone_pretraining")
    return model, backbone


def _batch(pool: Pool, index: np.ndarray, size: int, flip: np.ndarray) -> tuple[np.ndarray, ...]:
    """Images scaled to [0, 1] at `size` (area resize), mirrored where `flip`, labels swapped."""
    x = np.empty((len(index), size, size, 3), np.float32)
    for row, i in enumerate(index):
        image = pool.images[i]
        if size != image.shape[0]:
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        x[row] = image[:, ::-1] if flip[row] else image
    x *= np.float32(1.0 / 255.0)
    y = np.where(flip, 1.0 - pool.labels[index], pool.labels[index]).astype(np.float32)
    return x, y


def _learning_rate(stage: Stage, step_in_stage: int) -> float:
    if step_in_stage < stage.warmup_steps:
        return stage.learning_rate * (step_in_stage + 1) / stage.warmup_steps
    span = max(1, stage.steps - stage.warmup_steps)
    t = min(1.0, (step_in_stage - stage.warmup_steps) / span)
    low = stage.learning_rate * stage.final_fraction
    return low + 0.5 * (stage.learning_rate - low) * (1.0 + math.cos(math.pi * t))


def _stage_at(recipe: BackboneRecipe, step: int) -> tuple[Stage, int]:
    for stage in recipe.stages:
        if step < stage.steps:
            return stage, step
        step -= stage.steps
    return recipe.stages[-1], recipe.stages[-1].steps


@dataclass
class BackboneReport:
    recipe: dict[str, object]
    steps_done: int = 0
    images_seen: int = 0
    train_time_s: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    val_accuracy_224: float | None = None
    weights_file: str = ""


def _evaluate(model: keras.Model, val: Pool, size: int) -> tuple[float, float]:
    """(accuracy, loss) of the pretraining head on the monitoring faces at `size`."""
    flip = np.zeros(len(val.labels), bool)
    x, y = _batch(val, np.arange(len(val.labels)), size, flip)
    p = predict_batched(model, x, 64).reshape(-1)
    p = np.clip(p, 1e-7, 1 - 1e-7)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return float(np.mean((p >= 0.5) == (y > 0.5))), loss


def pretrain_backbone(
    work: Path,
    recipe: BackboneRecipe,
    progress: Progress | None = None,
    max_minutes: float | None = None,
) -> BackboneReport:
    """Train (or resume) the backbone in `work`; returns its report. The weights file
    `work/BACKBONE_WEIGHTS` exists once every stage has run."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    checkpoint, state_path = work / "checkpoint.keras", work / "checkpoint.json"
    report_path = work / BACKBONE_REPORT
    pool = build_pool(work, "pool", recipe.seed, recipe.pool_images, recipe.workers, progress)
    val = build_pool(work, "val", recipe.val_seed, recipe.val_images, recipe.workers, progress)
    report = BackboneReport(recipe=asdict(recipe))
    if checkpoint.is_file() and state_path.is_file():
        model = keras.models.load_model(str(checkpoint), safe_mode=True)
        saved = json.loads(state_path.read_text())
        report = BackboneReport(**{**asdict(report), **saved["report"], "recipe": asdict(recipe)})
        log.info("resuming backbone pretraining at step %d", report.steps_done)
    else:
        model, _ = build_pretraining_model(recipe, recipe.seed)
        model.compile(
            optimizer=keras.optimizers.Adam(recipe.stages[0].learning_rate),
            loss="binary_crossentropy",
            metrics=["accuracy"],
        )
    started = time.perf_counter()
    budget_end = started + max_minutes * 60 if max_minutes is not None else None
    while report.steps_done < recipe.total_steps:
        stage, step_in_stage = _stage_at(recipe, report.steps_done)
        chunk = min(recipe.checkpoint_steps, stage.steps - step_in_stage)
        lr = _learning_rate(stage, step_in_stage + chunk // 2)
        model.optimizer.learning_rate.assign(lr)
        n = chunk * recipe.batch_size
        # Seeded by position, so a resumed run draws the batches an uninterrupted one would.
        rng = np.random.default_rng([recipe.seed, report.steps_done])
        index = rng.integers(0, len(pool.labels), n)
        x, y = _batch(pool, index, stage.size, rng.random(n) < 0.5)
        chunk_started = time.perf_counter()
        history = model.fit(x, y, batch_size=recipe.batch_size, epochs=1, verbose=0, shuffle=False)
        elapsed = time.perf_counter() - chunk_started
        report.steps_done += chunk
        report.images_seen += n
        report.train_time_s += elapsed
        accuracy, loss = _evaluate(model, val, stage.size)
        report.history.append(
            {
                "step": report.steps_done,
                "size": stage.size,
                "learning_rate": lr,
                "train_loss": float(history.history["loss"][-1]),
                "train_accuracy": float(history.history["accuracy"][-1]),
                "val_accuracy": accuracy,
                "val_loss": loss,
                "images_per_s": n / elapsed,
            }
        )
        log.info(
            "step %d/%d @%d px: loss %.3f acc %.3f, val acc %.3f (%.1f img/s)",
            report.steps_done,
            recipe.total_steps,
            stage.size,
            history.history["loss"][-1],
            history.history["accuracy"][-1],
            accuracy,
            n / elapsed,
        )
        temporary = checkpoint.with_name("checkpoint.partial.keras")
        model.save(str(temporary))
        os.replace(temporary, checkpoint)
        _write_json(state_path, {"report": asdict(report)})
        if progress:
            progress(
                f"backbone @{stage.size} px (val acc {accuracy:.3f})",
                report.steps_done,
                recipe.total_steps,
            )
        if budget_end is not None and time.perf_counter() > budget_end:
            log.info("time budget reached; rerun to resume")
            return report
    backbone = next(la for la in model.layers if isinstance(la, keras.Model))
    weights = work / BACKBONE_WEIGHTS
    temporary = weights.with_name("backbone.partial.weights.h5")
    backbone.save_weights(str(temporary))
    os.replace(temporary, weights)
    report.val_accuracy_224, _ = _evaluate(model, val, FULL_SIZE)
    report.weights_file = weights.name
    _write_json(report_path, asdict(report))
    return report


def _write_json(path: Path, data: object) -> None:
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(temporary, path)
