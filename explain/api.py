"""`explain_image`: predict, explain and measure every model on one image; write the results.

Outputs in `out`: `<model>_overlay.png` (positive attribution toward the explained
class on the model's input image), `<model>_attributions.npy` (the signed (H, W, 3)
float32 map), `comparison.png` (input + one signed map per model on one shared colour
scale) and `explain.json` (every figure of the report).
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.core.domain import NOTICE
from hemiface.core.errors import HemifaceError
from hemiface.explain.annotations import find_annotation
from hemiface.explain.baselines import make_baselines
from hemiface.explain.figures import (
    Panel,
    comparison_figure,
    overlay,
    shared_scale,
    write_whole,
)
from hemiface.explain.geometry import find_midline, read_mask
from hemiface.explain.integrated_gradients import Attribution, expected_evaluations
from hemiface.explain.metrics import SIDE_NOTE, laterality, mask_metrics
from hemiface.explain.models import ModelSource, find_models, load_model
from hemiface.explain.settings import ExplainSettings
from hemiface.runtime.images import read_image, write_image
from hemiface.runtime.manifest import Preprocessing
from hemiface.runtime.preprocess import resize_for_model, to_tensor

# progress(model title, path points just done, expected total for that model)
ExplainProgress = Callable[[str, int, int], None]


@dataclass
class ModelExplanation:
    name: str
    title: str
    source: str | None
    source_format: str
    sha256: str | None
    input_size: list[int]  # [height, width]
    p_right: float
    predicted: str
    explained: str
    score_explained: float  # F(x) of the explained class
    score_baseline: float  # F(x'), mean over baselines
    sum_attributions: float
    completeness_error: float | None
    completeness_ok: bool
    steps: int
    rule: str
    gradient_evaluations: int
    laterality: dict
    mask: dict | None = None
    sanity: dict | None = None
    deletion: dict | None = None
    loader: str = ""  # which loader read the source: keras, tf_keras, saved_model, in-memory
    files: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    attributions: np.ndarray | None = field(default=None, repr=False)  # not in JSON


@dataclass
class ExplainReport:
    image: str
    out: str
    settings: ExplainSettings
    midline: dict
    annotation: dict | None  # ground truth from a synthetic data set's labels.csv
    mask: str | None  # the mask used for the lesion metrics
    models: list[ModelExplanation]
    failures: list[dict]  # models that could not be explained: {"name", "error"}
    files: dict
    seconds: dict
    shared_scale: float  # |attribution| at full colour in every picture of this run
    created: str
    convention: str = SIDE_NOTE
    notice: str = NOTICE

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        for model in data["models"]:
            model.pop("attributions", None)
        return data


def _describe(model: ModelExplanation) -> str:
    error = model.completeness_error
    error_text = "n/a" if error is None else f"{100 * error:.1f}%"
    return (
        f"P(Right)={model.p_right:.2f} -> {model.predicted}\n"
        f"explained {model.explained}, completeness err {error_text}"
    )


@dataclass
class ExplainSession:
    """Loaded models and traced gradient graphs, reused across `explain_image` calls.

    Pass one session to several calls (say a Left and a Right test image) and each model
    file is loaded, and each architecture traced, once. Models of one architecture (the
    base and fine-tuned MobileNetV2) share one traced graph: their weights are swapped in
    (tracing MobileNetV2's gradient costs ~3.5 s). A caller's in-memory model is never
    written to; it gets a graph of its own.
    """

    loaded: dict[str, tuple[Any, dict, list, str]] = field(default_factory=dict)
    scorers: dict[str, Any] = field(default_factory=dict)  # architecture key -> scorer


def _load(
    source: ModelSource, unsafe: bool, session: ExplainSession, custom_objects: dict | None
) -> tuple[Any, dict]:
    from hemiface.explain.scorer import architecture_key

    if source.model is not None:
        return load_model(source, unsafe)
    assert source.path is not None  # a source without a model in memory has a file
    key = f"{Path(source.path).resolve()}|unsafe={unsafe}"
    if key not in session.loaded:
        model, facts = load_model(source, unsafe, custom_objects)
        # Own copy of the weights: a shared graph's variables get other models' weights.
        session.loaded[key] = (model, facts, model.get_weights(), architecture_key(model))
    model, facts, _, _ = session.loaded[key]
    return model, facts


def _scorer_for(source: ModelSource, model: Any, unsafe: bool, session: ExplainSession) -> Any:
    from hemiface.explain.scorer import ModelScorer

    if source.model is not None:
        key = f"in-memory:{id(model)}"
        if key not in session.scorers:
            session.scorers[key] = ModelScorer(model, source.name)
        return session.scorers[key]
    assert source.path is not None  # a source without a model in memory has a file
    path_key = f"{Path(source.path).resolve()}|unsafe={unsafe}"
    _, _, weights, architecture = session.loaded[path_key]
    name = str(source.path)
    if architecture not in session.scorers:
        session.scorers[architecture] = ModelScorer(model, name)
    scorer = session.scorers[architecture]
    scorer.use_weights(weights, name)
    return scorer


def _explain_one(
    source: ModelSource,
    facts: dict,
    rgb: np.ndarray,
    settings: ExplainSettings,
    midline_fraction: float | None,
    mask_path: Path | None,
    progress: Callable[[int], None] | None,
    scorer: Any,
) -> ModelExplanation:
    from hemiface.explain.deletion import deletion_curve
    from hemiface.explain.sanity import sanity_check
    from hemiface.explain.scorer import Target
    from hemiface.explain.smoothgrad import smooth_integrated_gradients

    spec = Preprocessing(width=scorer.width, height=scorer.height)
    x = to_tensor(rgb, spec)[0]
    low = float(spec.offset)
    high = float(255 * spec.scale + spec.offset)
    baselines = make_baselines(
        settings.baseline, x, low, high, settings.baseline_samples, settings.seed
    )
    ig = settings.ig
    # p from the same graph IG uses (alpha = 1 is x itself), so nothing else is traced.
    p_right = float(
        scorer.path_gradients(x, baselines[0], np.ones(1), np.zeros(1), Target("Right"))[1][0]
    )
    predicted = Target.predicted(p_right)
    target = Target(settings.target) if settings.target else predicted
    if settings.smooth > 0:
        attribution: Attribution = smooth_integrated_gradients(
            scorer,
            x,
            baselines,
            target,
            ig,
            samples=settings.smooth,
            sigma=settings.smooth_sigma,
            value_range=high - low,
            seed=settings.seed,
            progress=progress,
        )
    else:
        attribution = ig.attribute(scorer, x, baselines, target, progress)
    midline_x = None if midline_fraction is None else midline_fraction * scorer.width
    result = ModelExplanation(
        name=source.name,
        title=source.title,
        input_size=[scorer.height, scorer.width],
        p_right=p_right,
        predicted=predicted.label,
        explained=attribution.target,
        score_explained=float(target.score(p_right)),
        score_baseline=attribution.score_baseline,
        sum_attributions=attribution.sum_attributions,
        completeness_error=attribution.completeness_error,
        completeness_ok=attribution.converged,
        steps=attribution.steps,
        rule=attribution.rule,
        gradient_evaluations=attribution.gradient_evaluations,
        laterality=laterality(attribution.attributions, midline_x),
        attributions=attribution.attributions,
        **facts,
    )
    side = result.laterality["points_to_patient_side"]
    # Does the evidence sit on the side the explained class names (the affected side)?
    result.laterality["matches_explained_class"] = None if side is None else side == target.label
    if mask_path is not None:
        result.mask = mask_metrics(
            attribution.attributions, read_mask(mask_path, rgb.shape[:2], spec)
        )
    if settings.sanity:
        result.sanity = sanity_check(
            scorer.model,  # holds this model's weights, even when the graph is shared
            x,
            baselines,
            target,
            attribution,
            ig,
            top_layers=settings.sanity_top_layers,
            seed=settings.seed,
            progress=progress,
        )
    if settings.deletion:
        result.deletion = deletion_curve(
            scorer,
            x,
            attribution.attributions,
            baselines.mean(axis=0),
            target,
            seed=settings.seed,
            batch_size=settings.batch_size,
        )
    return result


def _expected_points(settings: ExplainSettings) -> int:
    per_ig = expected_evaluations(settings.rule, settings.steps, settings.baseline_samples)
    runs = max(1, settings.smooth) + (1 if settings.sanity else 0)
    return per_ig * runs


def explain_image(
    image: Path,
    models: Path | Mapping[str, Any],
    out: Path,
    settings: ExplainSettings | None = None,
    *,
    mask: Path | None = None,
    face_box: tuple[int, int, int, int] | None = None,
    use_annotations: bool = True,
    unsafe: bool = False,
    custom_objects: Path | None = None,
    progress: ExplainProgress | None = None,
    session: ExplainSession | None = None,
) -> ExplainReport:
    """Explain every model on `image` and write overlays, maps, a figure and explain.json.

    `models` is a folder (the three reference models) or {name: path or keras.Model}.
    `settings` (default: `ExplainSettings()`) says what is computed for each model; it was
    checked when it was made. A model that fails to load is listed in `failures` and the
    others go on; if none can be explained, HemifaceError. An image inside a `hemiface
    synth` data set brings its ground truth (labels.csv): the mask (unless `mask` is
    given), the true label and the landmarks' midline (unless `face_box` is given);
    `use_annotations=False` ignores it. Pass one `ExplainSession` to several calls to load
    and trace each model only once. `custom_objects` names a trusted Python file that
    defines the models' custom layers.
    """
    started = time.perf_counter()
    settings = settings if settings is not None else ExplainSettings()
    image = Path(image)
    rgb = read_image(image)
    annotation = find_annotation(image) if use_annotations else None
    if mask is None and annotation is not None and annotation.mask.is_file():
        mask = annotation.mask
    if mask is not None:
        read_mask(Path(mask), rgb.shape[:2], Preprocessing())  # fail early on a bad mask
    sources = find_models(models)
    midline_fraction, midline_source = find_midline(
        rgb, face_box, annotation.midline_x if annotation else None
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    from hemiface.kerasio import import_keras

    import_started = time.perf_counter()
    import_keras()
    import_seconds = time.perf_counter() - import_started
    objects = None
    if custom_objects is not None:
        from hemiface.kerasio import load_custom_objects

        objects = load_custom_objects(Path(custom_objects))

    explained: list[ModelExplanation] = []
    failures: list[dict] = []
    expected = _expected_points(settings)
    session = session if session is not None else ExplainSession()
    for source in sources:
        model_started = time.perf_counter()
        advance = None
        if progress is not None:
            progress(source.title, 0, expected)

            def advance(n: int, title: str = source.title) -> None:
                progress(title, n, expected)

        try:
            model, facts = _load(source, unsafe, session, objects)
            loaded = time.perf_counter()
            scorer = _scorer_for(source, model, unsafe, session)
            result = _explain_one(
                source, facts, rgb, settings, midline_fraction, mask, advance, scorer
            )
        except HemifaceError as exc:
            failures.append({"name": source.name, "error": str(exc)})
            continue
        result.seconds = {
            "load": round(loaded - model_started, 3),
            "explain": round(time.perf_counter() - loaded, 3),
        }
        explained.append(result)
    if not explained:
        raise HemifaceError("; ".join(f["error"] for f in failures) or "no model explained")

    maps = {m.name: m.attributions for m in explained if m.attributions is not None}
    scale = shared_scale(list(maps.values()))
    panels = []
    for model in explained:
        attributions = maps[model.name]
        spec = Preprocessing(width=model.input_size[1], height=model.input_size[0])
        model_rgb = resize_for_model(rgb, spec)
        npy = out / f"{model.name}_attributions.npy"
        buffer = io.BytesIO()
        np.save(buffer, attributions)
        write_whole(npy, buffer.getvalue())
        overlay_path = out / f"{model.name}_overlay.png"
        write_image(overlay_path, overlay(model_rgb, attributions, scale))
        model.files = {"overlay": str(overlay_path), "attributions": str(npy)}
        shown_mask = None if mask is None else read_mask(Path(mask), rgb.shape[:2], spec)
        panels.append(
            Panel(
                model.title,
                _describe(model),
                attributions,
                model.laterality["midline_x"],
                shown_mask,
            )
        )
    first_spec = Preprocessing(width=explained[0].input_size[1], height=explained[0].input_size[0])
    caption = (
        f"{image.name}: red = evidence for the explained class, blue = against; dashed: the "
        "face's midline" + ("; green: the lesion mask" if mask is not None else "") + "."
    )
    figure = comparison_figure(
        resize_for_model(rgb, first_spec), panels, scale, out / "comparison.png", caption
    )
    report = ExplainReport(
        image=str(image),
        out=str(out),
        settings=settings,
        midline={"x_fraction": midline_fraction, "source": midline_source},
        annotation=annotation.to_dict() if annotation else None,
        mask=str(mask) if mask is not None else None,
        models=explained,
        failures=failures,
        files={"comparison": str(figure), "json": str(out / "explain.json")},
        seconds={
            "import_tensorflow": round(import_seconds, 3),
            "total": round(time.perf_counter() - started, 3),
        },
        shared_scale=scale,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    write_whole(out / "explain.json", (json.dumps(report.to_dict(), indent=2) + "\n").encode())
    return report
