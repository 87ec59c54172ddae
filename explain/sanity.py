"""Model-randomization sanity check (Adebayo et al., 2018, "Sanity Checks for Saliency Maps").

An explanation that survives randomizing the weights explains the image, not the model.
The model is cloned with fresh initial weights (Keras' own initializers: BatchNorm back
to identity, kernels drawn anew); "top N" keeps the original weights everywhere except
the N topmost layers that have weights (the paper's cascading randomization, from the
output down); "all" randomizes every layer. The maps are then compared by Spearman rank
correlation, of |attribution| and of the signed map: near 0 is what a faithful method
shows, near 1 is a warning.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hemiface.core.errors import HemifaceError, one_line
from hemiface.explain.integrated_gradients import Attribution, ProgressFn
from hemiface.explain.metrics import magnitude_map, signed_map, spearman
from hemiface.explain.scorer import ModelScorer, Target
from hemiface.explain.settings import IGSettings


def layers_with_weights(model: Any) -> list[Any]:
    return [layer for layer in model.layers if layer.weights]


def randomize_model(model: Any, top_layers: int | None = None, seed: int = 0) -> Any:
    """A copy of `model` with its top `top_layers` weighted layers (None: all) re-initialized.

    The clone is made by the Keras that built the model (tf-keras for a Keras 2 file)."""
    from hemiface.kerasio import keras_module_for

    keras = keras_module_for(model)
    keras.utils.set_random_seed(seed)
    try:
        clone = keras.models.clone_model(model)
    except Exception as exc:  # noqa: BLE001 - e.g. a wrapped SavedModel cannot be cloned
        raise HemifaceError(
            f"{model.name}: cannot clone the model to randomize it ({type(exc).__name__}: "
            f"{one_line(exc)})"
        ) from None
    original = layers_with_weights(model)
    cloned = layers_with_weights(clone)
    if len(original) != len(cloned):
        raise HemifaceError(f"{model.name}: the clone's layers do not match the model's")
    keep = 0 if top_layers is None else max(0, len(original) - int(top_layers))
    for source, copy in zip(original[:keep], cloned[:keep], strict=True):
        copy.set_weights(source.get_weights())
    return clone


def sanity_check(
    model: Any,
    x: np.ndarray,
    baselines: np.ndarray,
    target: Target,
    reference: Attribution,
    ig: IGSettings,
    top_layers: int | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> dict:
    """Spearman correlation between `reference` and IG with the same settings `ig` on a
    randomized model."""
    randomized = randomize_model(model, top_layers, seed)
    scorer = ModelScorer(randomized, f"{model.name} (randomized)")
    random_attr = ig.attribute(scorer, x, baselines, target, progress)
    return {
        "randomized": "all layers" if top_layers is None else f"top {top_layers} layers",
        "randomized_layers": len(layers_with_weights(model))
        if top_layers is None
        else min(top_layers, len(layers_with_weights(model))),
        "spearman_abs": spearman(
            magnitude_map(reference.attributions), magnitude_map(random_attr.attributions)
        ),
        "spearman_signed": spearman(
            signed_map(reference.attributions), signed_map(random_attr.attributions)
        ),
        "randomized_score_input": random_attr.score_input,
        "randomized_completeness_error": random_attr.completeness_error,
        "seed": seed,
    }
