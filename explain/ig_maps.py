"""Keras Integrated Gradients maps for the drift figures (workstation: needs TensorFlow).

`KerasIGMaps` loads the Keras models of a folder once (models of one architecture share a
traced gradient graph, as in `explain_image`) and gives, for an image, each model's IG map
toward its predicted class, at the models' input size. The artifacts' maps are compared
with these by explain/drift.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hemiface.explain.api import ExplainSession, _load, _scorer_for
from hemiface.explain.baselines import make_baselines
from hemiface.explain.models import ModelSource, find_models
from hemiface.explain.scorer import Target
from hemiface.explain.settings import ExplainSettings
from hemiface.runtime.manifest import Preprocessing
from hemiface.runtime.preprocess import to_tensor


@dataclass
class KerasIGMaps:
    """IG maps of the Keras models in `folder` with `settings` (steps, rule, baseline)."""

    folder: Path
    settings: ExplainSettings = field(default_factory=ExplainSettings)
    session: ExplainSession = field(default_factory=ExplainSession)
    sources: list[ModelSource] = field(init=False)

    def __post_init__(self) -> None:
        from hemiface.kerasio import import_keras

        import_keras()
        self.sources = find_models(self.folder)

    def __call__(self, image: Path, rgb: np.ndarray) -> dict[str, tuple[np.ndarray, str]]:
        """{model name: (IG map (H, W, 3), the class it explains)} for one RGB image."""
        del image  # the maps depend on the pixels alone
        maps: dict[str, tuple[np.ndarray, str]] = {}
        for source in self.sources:
            model, _ = _load(source, False, self.session, None)
            scorer = _scorer_for(source, model, False, self.session)
            spec = Preprocessing(width=scorer.width, height=scorer.height)
            x = to_tensor(rgb, spec)[0]
            baselines = make_baselines(
                self.settings.baseline, x, samples=self.settings.baseline_samples,
                seed=self.settings.seed,
            )  # fmt: skip
            p_right = float(scorer.probabilities(x[None])[0])
            target = (
                Target(self.settings.target) if self.settings.target else Target.predicted(p_right)
            )
            attribution = self.settings.ig.attribute(scorer, x, baselines, target)
            maps[source.name] = (attribution.attributions, attribution.target)
        return maps
