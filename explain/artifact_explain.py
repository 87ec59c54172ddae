"""Perturbation explanations of a model set's TFLite artifacts on one image (TF-free).

For every format asked for, the models' artifacts (a fused one answering for its models in
one invoke) are scored on every core; occlusion or RISE gives one map per model; each map
gets IG's trust figures where they apply: the side it points to, the share inside the
lesion mask, deletion and insertion curves, and a model-randomization check on an artifact
with shuffled weights. Maps of one model in several formats are compared with the first
format (float32 when present) and with Keras IG maps when the caller has them.

The class explained for a model is the one asked for, else the one the reference format
predicts, the same for every format, so that the formats' maps compare.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.explain.artifacts import DEFAULT_BATCH, SetFormat, open_format
from hemiface.explain.deletion import deletion_curve
from hemiface.explain.drift import compare_maps
from hemiface.explain.insertion import insertion_curve
from hemiface.explain.logits import logit_outputs
from hemiface.explain.metrics import laterality, magnitude_map, mask_metrics, signed_map, spearman
from hemiface.explain.occlusion import OcclusionSettings, occlusion
from hemiface.explain.perturbation import (
    BatchScorer,
    PerturbationMaps,
    PerturbationProgress,
    fill_image,
)
from hemiface.explain.rise import RiseSettings, rise
from hemiface.explain.scorer import Target
from hemiface.explain.shuffle import shuffle_weights
from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.manifest import Preprocessing
from hemiface.runtime.preprocess import to_tensor

METHODS = ("occlusion", "rise")
# What the maps measure: the change of P(Right) (default: what the decision sees; focused on
# what moves it) or of its logit (a full-int8 sigmoid output saturates at 255/256, where no
# perturbation of a confident face shows; the logit does not: see explain/logits.py).
SCORES = ("logit", "probability")


@dataclass(frozen=True)
class ArtifactExplainSettings:
    """What is computed for every model and format; passed whole."""

    method: str = "occlusion"
    occlusion: OcclusionSettings = field(default_factory=OcclusionSettings)
    rise: RiseSettings = field(default_factory=RiseSettings)
    target: str | None = None  # None: the class the reference format predicts
    deletion: bool = False  # deletion and insertion curves
    sanity: bool = False  # maps of an artifact with shuffled weights
    workers: int | None = None  # threads, one interpreter each (default: the cores, max 4)
    batch: int = DEFAULT_BATCH
    fuse: bool = True
    seed: int = 0  # deletion's random orders and the weight shuffle
    score: str = "probability"  # one of SCORES

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise HemifaceError(
                f"--method must be one of {', '.join(METHODS)}, not {self.method!r}"
            )
        if self.score not in SCORES:
            raise HemifaceError(f"--score must be one of {', '.join(SCORES)}, not {self.score!r}")
        if self.target is not None:
            Target(self.target)
        if self.workers is not None and not 1 <= self.workers <= 64:
            raise HemifaceError(f"--workers must be 1 to 64, got {self.workers}")
        if self.batch < 1:
            raise HemifaceError(f"--batch-size must be at least 1, got {self.batch}")

    @property
    def fill(self) -> str:
        return self.occlusion.fill if self.method == "occlusion" else self.rise.fill


def perturbation_maps(
    scorer: BatchScorer,
    x: np.ndarray,
    spec: Preprocessing,
    settings: ArtifactExplainSettings,
    progress: PerturbationProgress | None = None,
) -> tuple[PerturbationMaps, np.ndarray]:
    """(the method's maps of every model of `scorer`, the fill used) for one input x."""
    low, high = float(spec.offset), float(255 * spec.scale + spec.offset)
    fill = fill_image(settings.fill, x, low, high, settings.seed)
    if settings.method == "occlusion":
        return occlusion(scorer, x, fill, settings.occlusion, progress), fill
    return rise(scorer, x, fill, settings.rise, progress), fill


@dataclass
class FormatResult:
    """One model's explanation by one format's artifact."""

    format: str
    p_right: float
    predicted: str
    explained: str
    laterality: dict
    mask: dict | None = None
    deletion: dict | None = None
    insertion: dict | None = None
    sanity: dict | None = None
    vs_reference: dict | None = None  # compare_maps with the reference format's map
    vs_ig: dict | None = None  # compare_maps with the Keras IG map
    files: dict = field(default_factory=dict)
    map: np.ndarray | None = field(default=None, repr=False)  # (H, W); not in JSON


@dataclass
class ModelResult:
    name: str
    title: str
    explained: str
    formats: list[FormatResult]
    ig: dict | None = None  # {"explained", "mask": ...} of the Keras IG map given

    def to_dict(self) -> dict:
        data = asdict(self)
        for result in data["formats"]:
            result.pop("map", None)
        return data


def as_probability(values: np.ndarray, score: str) -> np.ndarray:
    """P(Right) from what the scorer gives (logits or probabilities)."""
    values = np.asarray(values, np.float64)
    if score == "probability":
        return values
    result: np.ndarray = 1.0 / (1.0 + np.exp(-values))
    return result


class _ModelColumn:
    """One model of a set's scorer, as deletion and insertion want it: scores(images, target)
    of the explained class's probability (curves in probability, as IG's)."""

    def __init__(self, scorer: BatchScorer, index: int, score: str) -> None:
        self.scorer, self.index, self.score = scorer, index, score

    def scores(self, images: np.ndarray, target: Target, batch_size: int = 16) -> np.ndarray:
        del batch_size  # the pool batches on its own
        values = self.scorer.probabilities(images)[:, self.index]
        return np.asarray(target.score(as_probability(values, self.score)))


@dataclass
class OpenSet:
    """The formats of a set opened once, reused for every image of a folder."""

    formats: dict[str, SetFormat]
    shuffled: dict[str, SetFormat]  # the same with shuffled weights (sanity), when asked

    @property
    def reference(self) -> str:
        return next(iter(self.formats))

    def close(self) -> None:
        for opened in [*self.formats.values(), *self.shuffled.values()]:
            opened.close()


def open_set(
    folder: Path, formats: Sequence[str], names: Sequence[str], settings: ArtifactExplainSettings
) -> OpenSet:
    def opened(fmt: str, shuffle: bool) -> SetFormat:
        def transform(content: bytes) -> bytes:
            if shuffle:
                content = shuffle_weights(content, settings.seed)
            return logit_outputs(content) if settings.score == "logit" else content

        return open_format(
            folder,
            fmt,
            names,
            workers=settings.workers,
            batch=settings.batch,
            fuse=settings.fuse,
            transform=transform,
        )

    result = OpenSet({}, {})
    try:
        for fmt in formats:
            result.formats[fmt] = opened(fmt, False)
            if settings.sanity:
                result.shuffled[fmt] = opened(fmt, True)
    except BaseException:
        result.close()
        raise
    return result


# progress(format, images scored, images in all) for the main maps
FormatProgress = Callable[[str, int, int], None]


def explain_models(
    rgb: np.ndarray,
    opened: OpenSet,
    settings: ArtifactExplainSettings,
    mask: np.ndarray | None = None,
    midline_x: float | None = None,
    ig_maps: dict[str, tuple[np.ndarray, str]] | None = None,
    progress: FormatProgress | None = None,
) -> list[ModelResult]:
    """Every model in every opened format on one RGB image; `ig_maps` maps a model name to
    (its Keras IG map (H, W[, 3]), the class it explains), for the drift figures."""
    computed: dict[str, tuple[SetFormat, PerturbationMaps, np.ndarray, np.ndarray]] = {}
    for fmt, set_format in opened.formats.items():
        x = to_tensor(rgb, set_format.spec)[0]
        report = None if progress is None else (lambda d, t, f=fmt: progress(f, d, t))
        maps, fill = perturbation_maps(set_format.pool, x, set_format.spec, settings, report)
        computed[fmt] = (set_format, maps, x, fill)
    first = computed[opened.reference]
    results = []
    for index, entry in enumerate(first[0].entries):
        first_p = float(as_probability(first[1].p_right, settings.score)[index])
        target = (
            Target(settings.target)
            if settings.target
            else Target.predicted(first_p, entry.threshold)
        )
        formats: list[FormatResult] = []
        for fmt, (set_format, maps, x, fill) in computed.items():
            attribution = maps.map_for(index, target)
            p_right = float(as_probability(maps.p_right, settings.score)[index])
            result = FormatResult(
                format=fmt,
                p_right=p_right,
                predicted=entry.label_for(p_right),
                explained=target.label,
                laterality=laterality(attribution, midline_x),
                map=attribution,
            )
            side = result.laterality["points_to_patient_side"]
            result.laterality["matches_explained_class"] = (
                None if side is None else side == target.label
            )
            if mask is not None:
                result.mask = mask_metrics(attribution, mask)
            if settings.deletion:
                # Scores like a ModelScorer (the curves call it the same way).
                column: Any = _ModelColumn(set_format.pool, index, settings.score)
                result.deletion = deletion_curve(column, x, attribution, fill, target,
                                                 seed=settings.seed)  # fmt: skip
                result.insertion = insertion_curve(column, x, attribution, fill, target,
                                                   seed=settings.seed)  # fmt: skip
            if fmt in opened.shuffled:
                result.sanity = _sanity(
                    opened.shuffled[fmt], x, settings, attribution, index, target
                )
            if fmt != opened.reference:
                reference_map = formats[0].map
                assert reference_map is not None
                result.vs_reference = compare_maps(reference_map, attribution)
            formats.append(result)
        model = ModelResult(entry.name, entry.title, target.label, formats)
        if ig_maps and entry.name in ig_maps:
            ig_map, ig_class = ig_maps[entry.name]
            # IG of the other class is exactly the negated map (one sigmoid).
            signed = signed_map(ig_map) * (1.0 if ig_class == target.label else -1.0)
            model.ig = {"explained": target.label, "mask": None}
            if mask is not None:
                model.ig["mask"] = mask_metrics(signed, mask)
            for result in formats:
                assert result.map is not None
                result.vs_ig = compare_maps(signed, result.map)
        results.append(model)
    return results


def _sanity(
    shuffled: SetFormat,
    x: np.ndarray,
    settings: ArtifactExplainSettings,
    reference: np.ndarray,
    index: int,
    target: Target,
) -> dict:
    """Spearman of the map with the map of the same artifact with its weights shuffled."""
    maps, _ = perturbation_maps(shuffled.pool, x, shuffled.spec, settings)
    randomized = maps.map_for(index, target)
    return {
        "randomized": "every weight buffer shuffled (explain/shuffle.py)",
        "spearman_abs": spearman(magnitude_map(reference), magnitude_map(randomized)),
        "spearman_signed": spearman(signed_map(reference), signed_map(randomized)),
        "randomized_p_right": float(as_probability(maps.p_right, settings.score)[index]),
        "seed": settings.seed,
    }
