from __future__ import annotations

from pathlib import Path

import numpy as np

from hemiface.benchmarks.agreement import (
    KerasLoading,
    Probabilities,
    run_agreement,
    summarize_agreement,
)
from hemiface.benchmarks.inputs import keras_sources, labelled_images
from hemiface.runtime.manifest import load_manifest


def test_agreement_on_tiny_models(bench_assets: dict[str, Path]) -> None:
    manifest = load_manifest(bench_assets["tflite"])
    sources = keras_sources(manifest, bench_assets["keras"])
    assert all(path is not None for path in sources.values())
    assert sources["cnn_stroke_model"].suffix == ".h5"
    images = labelled_images(bench_assets["data"], ["Left", "Right"], "Right")
    assert len(images) == 12 and sum(i.y for i in images) == 6
    names = manifest.names()
    found = run_agreement(
        manifest, bench_assets["tflite"], sources, images, names, ["float32", "int8"],
        KerasLoading(),
    )  # fmt: skip
    figures = summarize_agreement(found).to_json()
    assert figures["failures"] == []
    assert figures["n_images"] == 12
    by_artifact = {(v["model"], v["format"]): v for v in figures["vs_source"]}
    assert len(by_artifact) == 6
    for name in names:
        float32 = by_artifact[name, "float32"]
        assert float32["label_agreement"] == 1.0 and float32["flips"] == 0
        assert float32["max_abs_dp"] < 1e-4
        int8 = by_artifact[name, "int8"]
        assert int8["mean_abs_dp"] <= int8["p99_abs_dp"] <= int8["max_abs_dp"] < 0.1
    for q in figures["quality"]:
        assert 0.0 <= q["accuracy"] <= 1.0
        assert q["roc_auc"] is None or 0.0 <= q["roc_auc"] <= 1.0
        assert 0.0 <= q["ece"] <= 1.0
        assert 0.0 <= q["flip_consistency"] <= 1.0
    variants = [b["variant"] for b in figures["between_models"]]
    assert variants == ["keras", "float32", "int8"]
    for block in figures["between_models"]:
        assert len(block["pairs"]) == 3
        assert all(-1.0 <= p["kappa"] <= 1.0 for p in block["pairs"])
        assert 0.0 <= block["ensemble"]["majority_accuracy"] <= 1.0


def test_agreement_of_identical_models() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(20)
    y = (rng.random(20) > 0.5).astype(np.int64)
    vectors = {("a", "keras"): p, ("a", "float32"): p.copy(), ("b", "float32"): p.copy()}
    flips = {key: 1 - v for key, v in vectors.items()}
    found = Probabilities(y, 0.5, ["a", "b"], p=vectors, p_flip=flips)
    figures = summarize_agreement(found).to_json()
    (vs,) = figures["vs_source"]
    assert vs["label_agreement"] == 1.0 and vs["max_abs_dp"] == 0.0
    (pair,) = figures["between_models"][1]["pairs"]
    assert pair["kappa"] == 1.0 and pair["label_agreement"] == 1.0
    assert all(q["flip_consistency"] == 0.0 for q in figures["quality"])


def test_labelled_images_limit_is_balanced(bench_assets: dict[str, Path]) -> None:
    images = labelled_images(bench_assets["data"], ["Left", "Right"], "Right", limit=4)
    assert [i.label for i in images] == ["Left", "Left", "Right", "Right"]
