"""`train_all`: the three reference models from a labelled image folder.

MobileNetV2 pair: the frozen part of the network below the cut runs once per image and
its activations are cached; the base model's head trains on the pooled vectors (computed
once: the whole backbone is frozen) and the fine-tuned upper layers train on the cached
activations (mathematically the same as training the whole model with the lower layers
frozen, at a fraction of the cost). The fine-tune recipe depends on the backbone weights
(`_finetune_recipe`): pretrained weights get the classic small, low-rate fine-tune of the
last block with BatchNorm frozen; a random-init backbone trains blocks 13-16 at a higher
rate with BatchNorm in training mode and flip-and-swap augmentation. The report notes
which recipe ran. The CNN trains on batches in which every face comes with its mirror
image and the swapped label (a mirrored face is a face of the other label), with a cosine
learning-rate decay over all its epochs; the epoch kept is the best on the validation
faces and their mirrors.

Resumable: a model file that already exists and reloads with safe_mode=True is reused
and only evaluated, unless `force`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hemiface.kerasio import quiet_tensorflow  # noqa: E402

quiet_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from hemiface.core.domain import MODEL_FILES, MODEL_TITLES  # noqa: E402
from hemiface.kerasio import load_keras_model, predict_batched  # noqa: E402
from hemiface.train import models  # noqa: E402
from hemiface.train.config import TrainConfig, config_for  # noqa: E402
from hemiface.train.data import ImageSet, load_dataset  # noqa: E402
from hemiface.train.metrics import ModelMetrics, evaluate  # noqa: E402
from hemiface.train.names import REPORT_JSON  # noqa: E402
from hemiface.train.report import write_reports  # noqa: E402

log = logging.getLogger("hemiface.train")
tf.get_logger().setLevel("ERROR")  # retracing notices for the last, smaller batch
Progress = Callable[[str, int, int], None]  # (stage, done, total)
RELOAD_SAMPLE = 8


@dataclass
class ModelResult:
    name: str
    title: str
    file: str
    status: str  # "trained" or "reused"
    train_images: int = 0
    epochs: int = 0
    best_epoch: int = 0
    val_accuracy: float | None = None
    train_time_s: float = 0.0
    trainable_params: int = 0
    total_params: int = 0
    metrics: ModelMetrics | None = None
    notes: list[str] = field(default_factory=list)
    # P(Right) of the first test images, as evaluated: the reload check compares with it.
    first_test_predictions: list[float] = field(default_factory=list)

    @property
    def test_accuracy(self) -> float | None:
        return self.metrics.accuracy if self.metrics else None

    def record(self, metrics: ModelMetrics, p: np.ndarray) -> None:
        self.metrics = metrics
        self.first_test_predictions = [float(v) for v in np.asarray(p).reshape(-1)[:RELOAD_SAMPLE]]

    def record_training(self, tracker: _Epochs, started: float, images: int) -> None:
        """What a fit that began at perf_counter() `started` ran, on `images` images."""
        self.train_time_s = time.perf_counter() - started
        self.epochs, self.best_epoch = tracker.ran, tracker.best_epoch
        self.val_accuracy, self.train_images = tracker.best[0], images


@dataclass
class TrainReport:
    data: str
    out: str
    quick: bool
    weights_requested: str
    weights_used: str
    # Whether the MobileNetV2 backbone started from learned weights (chooses the fine-tune
    # recipe when the base model is reused); None in reports written before it was kept.
    backbone_pretrained: bool | None
    images: dict[str, int]
    models: list[ModelResult]
    config: dict[str, object]
    wall_time_s: float = 0.0
    reload_max_abs_diff: dict[str, float] = field(default_factory=dict)
    environment: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class _Epochs(keras.callbacks.Callback):
    """Best-validation-accuracy weights (ties: lower val loss), patience, progress."""

    def __init__(self, stage: str, epochs: int, patience: int, progress: Progress | None):
        super().__init__()
        self.stage, self.epochs, self.patience, self.progress = stage, epochs, patience, progress
        self.best: tuple[float, float] = (-1.0, 0.0)
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None
        self.ran = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        score = (float(logs.get("val_accuracy", 0.0)), -float(logs.get("val_loss", 0.0)))
        self.ran = epoch + 1
        if score > self.best:
            self.best, self.best_epoch = score, epoch + 1
            self.best_weights = [w.copy() for w in self.model.get_weights()]
        elif epoch + 1 - self.best_epoch >= self.patience:
            self.model.stop_training = True
        if self.progress:
            self.progress(f"{self.stage} (val acc {score[0]:.3f})", epoch + 1, self.epochs)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def forward(model: keras.Model, images: np.ndarray, batch: int, stage: str,
             progress: Progress | None) -> np.ndarray:  # fmt: skip
    """Run `model` on uint8 images in batches (scaled to [0, 1] here)."""
    report = None if progress is None else (lambda done, total: progress(stage, done, total))
    return predict_batched(model, images, batch, divisor=255.0, progress=report)


@dataclass(frozen=True)
class FitPlan:
    """How long and how one model trains: epochs, the optimizer's rate (a number or a
    schedule), its decoupled weight decay (0: plain Adam) and the early-stopping patience
    (None: the config's)."""

    epochs: int
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule
    weight_decay: float = 0.0
    patience: int | None = None

    def optimizer(self) -> keras.optimizers.Optimizer:
        if self.weight_decay:
            return keras.optimizers.AdamW(self.learning_rate, weight_decay=self.weight_decay)
        return keras.optimizers.Adam(self.learning_rate)


def _fit(model: keras.Model, train: keras.utils.PyDataset | tuple, val: tuple, plan: FitPlan,
         cfg: TrainConfig, stage: str, progress: Progress | None) -> _Epochs:  # fmt: skip
    epochs = plan.epochs
    model.compile(optimizer=plan.optimizer(), loss="binary_crossentropy", metrics=["accuracy"])
    tracker = _Epochs(stage, epochs, plan.patience or cfg.patience, progress)
    if isinstance(train, tuple):
        model.fit(train[0], train[1], batch_size=cfg.batch_size, epochs=epochs, verbose=0,
                  validation_data=val, callbacks=[tracker], shuffle=True)  # fmt: skip
    else:
        model.fit(train, epochs=epochs, verbose=0, validation_data=val, callbacks=[tracker])
    return tracker


def _params(model: keras.Model) -> tuple[int, int]:
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return trainable, model.count_params()


def _save(model: keras.Model, path: Path) -> None:
    temporary = path.with_name(path.stem + ".partial" + path.suffix)
    model.save(str(temporary))
    os.replace(temporary, path)  # an interrupted run never leaves a half-written model


class _MirrorPairs(keras.utils.PyDataset):
    """Shuffled batches scaled to [0, 1] in which every face comes with its mirror image
    and the swapped label (a mirrored face with droop on the patient's left shows it on
    the patient's right). Seeing both in the same step keeps a network from learning one
    side's features only and answering the other side by their absence, which leaves its
    probabilities lopsided (P(Right) stuck near sigmoid(bias) for every Right face)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch: int, seed: int) -> None:
        super().__init__()
        self.images, self.labels, self.half = images, labels, max(1, batch // 2)
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(labels))

    def __len__(self) -> int:
        return (len(self.labels) + self.half - 1) // self.half

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.labels))

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        chosen = self.order[index * self.half : (index + 1) * self.half]
        x = self.images[chosen].astype(np.float32) / np.float32(255.0)
        y = self.labels[chosen]
        return np.concatenate([x, x[:, :, ::-1]]), np.concatenate([y, 1.0 - y])


def _carry_over(out: Path, result: ModelResult) -> None:
    """A reused model keeps the training figures its earlier report recorded."""
    try:
        earlier = json.loads((out / REPORT_JSON).read_text())["models"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    for entry in earlier if isinstance(earlier, list) else []:
        if isinstance(entry, dict) and entry.get("name") == result.name:
            for key in ("train_images", "epochs", "best_epoch", "val_accuracy", "train_time_s"):
                if key in entry:
                    setattr(result, key, entry[key])


def _previous_backbone(out: Path, unknown: str) -> models.BackboneWeights:
    """The backbone weights the earlier report recorded; `unknown` (taken as pretrained)
    when there is no readable report."""
    try:
        report = json.loads((out / REPORT_JSON).read_text())
        description = str(report["weights_used"])
    except (OSError, ValueError, KeyError, TypeError):
        return models.BackboneWeights(True, unknown)
    pretrained = report.get("backbone_pretrained")
    if not isinstance(pretrained, bool):
        # A report written before the flag was kept: its sentence is all there is.
        pretrained = not description.startswith("random init")
    return models.BackboneWeights(pretrained, description)


def _end_to_end(model: keras.Model, test: ImageSet, cfg: TrainConfig, stage: str,
                progress: Progress | None, result: ModelResult) -> None:  # fmt: skip
    p = forward(model, test.images, cfg.batch_size, stage, progress)
    p_flip = forward(model, test.flipped().images, cfg.batch_size, stage + " (mirrored)",
                      progress)  # fmt: skip
    result.record(evaluate(test.labels, p, p_flip, test.severity), p)


@dataclass(frozen=True)
class FinetuneRecipe:
    name: str  # "pretrained" or "random init"
    cut_layer: str
    finetune_from: str
    learning_rate: float
    batchnorm_momentum: float | None  # None: BatchNorm frozen
    mirror_train: bool
    epochs: int
    train_images: int | None

    def describe(self) -> str:
        batchnorm = ("frozen" if self.batchnorm_momentum is None
                     else f"trained (momentum {self.batchnorm_momentum})")  # fmt: skip
        return (f"{self.name}: layers from {self.finetune_from} on trainable (features cached "
                f"at {self.cut_layer}), lr {self.learning_rate:g}, BatchNorm {batchnorm}"
                + (", mirrored training images with swapped labels" if self.mirror_train
                   else ""))  # fmt: skip


def _finetune_recipe(pretrained: bool, cfg: TrainConfig) -> FinetuneRecipe:
    """Pretrained weights: the classic small fine-tune (upper block, low rate, BatchNorm
    frozen). Random init: there is nothing to preserve, so more layers train at a higher
    rate with BatchNorm in training mode and flip-and-swap augmentation."""
    if not pretrained:
        return FinetuneRecipe("random init", cfg.scratch_cut_layer, cfg.scratch_finetune_from,
                              cfg.scratch_finetune_learning_rate,
                              cfg.scratch_batchnorm_momentum, True, cfg.scratch_finetune_epochs,
                              cfg.scratch_train_images)  # fmt: skip
    return FinetuneRecipe("pretrained", cfg.cut_layer, cfg.finetune_from,
                          cfg.finetune_learning_rate, None, False, cfg.finetune_epochs,
                          None)  # fmt: skip


def _train_mobilenets(sets: dict[str, ImageSet], out: Path, weights: str, cfg: TrainConfig,
                      reuse: dict[str, bool], progress: Progress | None,
                      results: dict[str, ModelResult]) -> models.BackboneWeights:  # fmt: skip
    """Base then fine-tuned; returns where the backbone weights came from."""
    base_name, tuned_name = "mobilenetv2_base_model", "mobilenetv2_finetuned_model"
    base_path, tuned_path = out / MODEL_FILES[base_name], out / MODEL_FILES[tuned_name]
    test = sets["test"]
    if reuse[base_name] and reuse[tuned_name]:
        for name, path in ((base_name, base_path), (tuned_name, tuned_path)):
            model = load_keras_model(path).model
            result = results[name]
            result.trainable_params, result.total_params = _params(model)
            _end_to_end(model, test, cfg, f"evaluate {path.name}", progress, result)
        return _previous_backbone(out, "unknown (models reused)")

    train = sets["train"]
    if cfg.mobilenet_train_images and len(train) > cfg.mobilenet_train_images:
        order = np.random.default_rng(cfg.seed).permutation(len(train))
        train = train.subset(np.sort(order[: cfg.mobilenet_train_images]))
    if reuse[base_name]:
        model = load_keras_model(base_path).model
        models.freeze_backbone(model)
        source = _previous_backbone(out, "unknown (base model reused)")
    else:
        model, source = models.make_base_model(weights, cfg.input_size, cfg.alpha)
        if not source.pretrained:
            pick = np.random.default_rng(cfg.seed).permutation(len(train))[:64]
            models.calibrate_batchnorm(model, train.images[np.sort(pick)])
            calibrated = "; BatchNorm statistics calibrated on 64 training images"
            source = models.BackboneWeights(False, source.description + calibrated)
    recipe = _finetune_recipe(source.pretrained, cfg)
    if recipe.train_images and len(train) > recipe.train_images:
        order = np.random.default_rng(cfg.seed).permutation(len(train))
        train = train.subset(np.sort(order[: recipe.train_images]))
    lower, upper = models.split_model(model, recipe.cut_layer)
    pooled, head = models.pooled_and_head(model, recipe.cut_layer)
    parts = [("train", train), ("val", sets["val"]), ("test", test),
             ("test_mirrored", test.flipped())]  # fmt: skip
    if recipe.mirror_train:
        parts.append(("train_mirrored", train.flipped()))
    cached = {}
    for split, images in parts:
        cached[split] = forward(lower, images.images, cfg.batch_size,
                                 f"MobileNetV2 features: {split}", progress)  # fmt: skip
    x_train, y_train = cached["train"], train.labels
    if recipe.mirror_train:
        x_train = np.concatenate([x_train, cached.pop("train_mirrored")])
        y_train = np.concatenate([y_train, 1.0 - train.labels])
    val = (cached["val"], sets["val"].labels)

    def evaluate_now(result: ModelResult) -> None:
        p = predict_batched(upper, cached["test"], 256)
        p_flip = predict_batched(upper, cached["test_mirrored"], 256)
        result.record(evaluate(test.labels, p, p_flip, test.severity), p)

    # Base: the backbone is frozen, so its pooled vectors are computed once and the head
    # (dropout + Dense, the model's own layers) trains on them.
    result = results[base_name]
    if not reuse[base_name]:
        vectors = {k: predict_batched(pooled, v, 64) for k, v in
                   (("train", x_train), ("val", val[0]))}  # fmt: skip
        started = time.perf_counter()
        tracker = _fit(head, (vectors["train"], y_train), (vectors["val"], val[1]),
                       FitPlan(cfg.head_epochs, cfg.head_learning_rate), cfg, "train Base",
                       progress)  # fmt: skip
        result.record_training(tracker, started, len(y_train))
        _save(model, base_path)
    result.trainable_params, result.total_params = _params(model)
    evaluate_now(result)

    result = results[tuned_name]
    models.unfreeze_upper(model, recipe.finetune_from, recipe.batchnorm_momentum)
    if not reuse[tuned_name]:
        started = time.perf_counter()
        tracker = _fit(upper, (x_train, y_train), val,
                       FitPlan(recipe.epochs, recipe.learning_rate), cfg, "train Fine-tuned",
                       progress)  # fmt: skip
        result.record_training(tracker, started, len(y_train))
        _save(model, tuned_path)
    result.trainable_params, result.total_params = _params(model)
    evaluate_now(result)
    result.notes.append(f"fine-tune recipe: {recipe.describe()}")
    return source


def _train_cnn(sets: dict[str, ImageSet], out: Path, cfg: TrainConfig, reuse: bool,
               progress: Progress | None, result: ModelResult) -> None:  # fmt: skip
    path = out / MODEL_FILES["cnn_stroke_model"]
    if reuse:
        model = load_keras_model(path).model
    else:
        train = sets["train"]
        if cfg.cnn_train_images and len(train) > cfg.cnn_train_images:
            order = np.random.default_rng(cfg.seed + 1).permutation(len(train))
            train = train.subset(np.sort(order[: cfg.cnn_train_images]))
        model = models.build_cnn(cfg.input_size)
        # Validation sees every face and its mirror, so the chosen epoch is the one that
        # answers best for both sides.
        both = ImageSet(
            np.concatenate([sets["val"].images, sets["val"].flipped().images]),
            np.concatenate([sets["val"].labels, 1.0 - sets["val"].labels]),
            np.concatenate([sets["val"].severity, sets["val"].severity]),
            sets["val"].files * 2,
        )
        val = (both.images.astype(np.float32) / 255.0, both.labels)
        started = time.perf_counter()
        batches = _MirrorPairs(train.images, train.labels, cfg.batch_size, cfg.seed)
        # Cosine decay over the whole run: the late, small steps settle both sides.
        schedule = keras.optimizers.schedules.CosineDecay(
            cfg.cnn_learning_rate, len(batches) * cfg.cnn_epochs, alpha=0.02
        )
        plan = FitPlan(cfg.cnn_epochs, schedule, cfg.cnn_weight_decay, patience=cfg.cnn_epochs)
        tracker = _fit(model, batches, val, plan, cfg, "train CNN", progress)
        result.record_training(tracker, started, len(train))
        _save(model, path)
    result.trainable_params, result.total_params = _params(model)
    _end_to_end(model, sets["test"], cfg, "evaluate CNN", progress, result)


def _reload_check(out: Path, test: ImageSet, results: dict[str, ModelResult]) -> dict[str, float]:
    """Reload each file as users' files are loaded (safe mode: Lambda layers refused); max
    |p - p as evaluated| on a few test images."""
    diffs = {}
    sample = test.images[:RELOAD_SAMPLE]
    for name, result in results.items():
        model = load_keras_model(out / result.file).model
        p = predict_batched(model, sample, divisor=255.0).reshape(-1)
        diffs[name] = float(np.abs(p - np.array(result.first_test_predictions)).max())
    return diffs


def train_all(data: Path, out: Path, quick: bool = False, weights: str = "imagenet",
              force: bool = False, progress: Progress | None = None,
              config: TrainConfig | None = None) -> TrainReport:  # fmt: skip
    """Train (or reuse) the three models from DATA into OUT and write the reports."""
    started = time.perf_counter()
    cfg = config or config_for(quick)
    data, out = Path(data), Path(out)
    load_before = os.getloadavg()
    keras.utils.set_random_seed(cfg.seed)
    if progress:
        progress("loading images", 0, 1)
    sets = load_dataset(data, cfg.input_size, seed=cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    results = {name: ModelResult(name, MODEL_TITLES[name], file, "trained")
               for name, file in MODEL_FILES.items()}  # fmt: skip
    reuse: dict[str, bool] = {}
    for name, result in results.items():
        path = out / result.file
        problem = None if force or not path.exists() else models.check_model_file(
            path, cfg.input_size)  # fmt: skip
        reuse[name] = path.exists() and not force and problem is None
        if reuse[name]:
            _carry_over(out, result)
            result.status = "reused"
            result.notes.append("existing valid file reused (use --force to rebuild)")
        elif problem:
            result.notes.append(f"existing file {problem}: rebuilt")
    source = _train_mobilenets(sets, out, weights, cfg, reuse, progress, results)
    _train_cnn(sets, out, cfg, reuse["cnn_stroke_model"], progress, results["cnn_stroke_model"])
    report = TrainReport(
        data=str(data), out=str(out), quick=quick, weights_requested=weights,
        weights_used=source.description, backbone_pretrained=source.pretrained,
        images={s: len(v) for s, v in sets.items()},
        models=list(results.values()), config=asdict(cfg),
    )  # fmt: skip
    report.reload_max_abs_diff = _reload_check(out, sets["test"], results)
    report.wall_time_s = time.perf_counter() - started
    report.environment = {
        "tensorflow": tf.__version__, "keras": keras.__version__, "cpus": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }  # fmt: skip
    write_reports(report.to_json(), out)
    return report
