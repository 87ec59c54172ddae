"""Batched invokes on fresh interpreters: each image gets the answer a batch of one gives it,
on any number of threads; a graph fixed to one image falls back to one at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hemiface.runtime.backends import resolve_backend
from hemiface.runtime.batched import ArtifactPool, ArtifactSource, BatchedInterpreter
from hemiface.runtime.manifest import load_manifest, read_verified_model
from hemiface.runtime.modelset import load_model_set
from hemiface.runtime.preprocess import to_tensor

NAMES = ["mobilenetv2_base_model", "mobilenetv2_finetuned_model", "cnn_stroke_model"]


def _sources(folder: Path, fmt: str) -> list[ArtifactSource]:
    manifest = load_manifest(folder)
    fused = next(f for f in manifest.fused if f.format == fmt)
    cnn = manifest.entry("cnn_stroke_model", fmt)
    return [
        ArtifactSource(fused.file, read_verified_model(folder, fused),
                       [o.index for o in fused.outputs], [o.model for o in fused.outputs]),
        ArtifactSource(cnn.file, read_verified_model(folder, cnn), [0], [cnn.name]),
    ]  # fmt: skip


def test_pool_gives_the_model_sets_answers(fused_set) -> None:  # noqa: ANN001
    folder = Path(fused_set[1])
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(11)]
    for fmt, tolerance in (("float32", 1e-5), ("int8", 1.01 / 256)):
        model_set = load_model_set(folder, fmt, num_threads=1)
        expected = np.array([model_set.probabilities(image) for image in images])
        tensors = np.concatenate([to_tensor(image, model_set.entries[0].preprocessing)
                                  for image in images])  # fmt: skip
        sources = _sources(folder, fmt)
        with ArtifactPool(sources, resolve_backend(), NAMES, workers=2, batch=4) as pool:
            got = pool.probabilities(tensors)
        with ArtifactPool(sources, resolve_backend(), NAMES, workers=1, batch=1) as single:
            alone = single.probabilities(tensors)
        assert got.shape == (11, 3)
        assert np.abs(got - expected).max() <= tolerance, fmt
        assert np.abs(got - alone).max() <= tolerance, fmt


def test_a_graph_fixed_to_one_image_runs_one_at_a_time(fused_set) -> None:  # noqa: ANN001
    folder = Path(fused_set[1])
    fused, cnn = _sources(folder, "float32")
    # convert exports a static batch: the CNN's Flatten is a RESHAPE to [1, n].
    assert BatchedInterpreter(cnn, resolve_backend(), 8).batch == 1
    assert BatchedInterpreter(fused, resolve_backend(), 8).batch == 8
