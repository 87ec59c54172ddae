"""Training settings of the full and the quick build (TF-free).

Sizes were planned from what this 2-core machine does: the frozen MobileNetV2 below the
cut runs once per image (cached), so its cost is one forward pass; the trainable upper
part (the last inverted-residual block, the final 1x1 conv and the head) trains on the
cached activations, and the CNN trains on the images with flip-and-swap augmentation.
That recipe suits pretrained (ImageNet) weights; for a random-init backbone the `scratch_*`
settings apply instead (more layers, higher rate, BatchNorm trained; see the trainer).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    input_size: int = 224
    alpha: float = 1.0
    seed: int = 0
    batch_size: int = 32
    # At most this many training images per model family (None = all): a seeded random subset.
    mobilenet_train_images: int | None = None
    cnn_train_images: int | None = None
    # Frozen backbone: the head alone.
    head_epochs: int = 25
    head_learning_rate: float = 1e-3
    # Fine-tuning: layers from `finetune_from` on are trainable (BatchNorm stays frozen).
    finetune_from: str = "block_16_expand"
    # Where the frozen lower part ends (its activations are cached): the tensor that feeds
    # the block `finetune_from` starts.
    cut_layer: str = "block_15_add"
    finetune_epochs: int = 30
    finetune_learning_rate: float = 5e-4
    # Fine-tuning a randomly initialised backbone (no ImageNet weights): a small, low-rate
    # fine-tune of block 16 has nothing pretrained to adapt, so more of the network trains,
    # at a higher rate, with BatchNormalization in training mode (its statistics follow the
    # changing weights; momentum lowered so the moving averages keep up within an epoch) and
    # the cache holds mirrored training images with swapped labels (flip-and-swap).
    scratch_finetune_from: str = "block_13_expand"
    scratch_cut_layer: str = "block_12_add"
    scratch_finetune_learning_rate: float = 1e-3
    scratch_batchnorm_momentum: float = 0.9
    scratch_train_images: int | None = 500  # each also mirrored: twice as many samples
    scratch_finetune_epochs: int = 6
    # The custom CNN: AdamW, its rate decayed along a cosine over all its epochs.
    cnn_epochs: int = 15
    cnn_learning_rate: float = 1e-3
    cnn_weight_decay: float = 0.004
    patience: int = 8  # epochs without a better validation accuracy before stopping


# Full: the CNN sees 1600 of the 2100 training images of a 3000-image set and the
# MobileNetV2 pair 1000 (its frozen forward pass is the expensive part).
FULL = TrainConfig(mobilenet_train_images=1000, cnn_train_images=1600)
QUICK = TrainConfig(
    mobilenet_train_images=300,
    head_epochs=15,
    finetune_epochs=6,
    cnn_epochs=8,
    patience=3,
    scratch_train_images=200,
    scratch_finetune_epochs=3,
)


def config_for(quick: bool, **overrides: Any) -> TrainConfig:
    # Any: the fields have mixed types; `replace` checks each name and takes the value as given.
    base = QUICK if quick else FULL
    return replace(base, **overrides) if overrides else base
