"""Which Keras models to explain: a folder of the three reference models, or a mapping.

A folder is searched for the three reference names with any format convert accepts
(.keras, .h5, a SavedModel folder); a folder holding none of them has every Keras model
in it explained instead. Loading goes through hemiface.convert.keras_io, which gives
one-line errors for a missing, unsafe or wrongly shaped model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hemiface.runtime.errors import HemifaceError

REFERENCE_TITLES = {
    "mobilenetv2_base_model": "Base",
    "mobilenetv2_finetuned_model": "Fine-tuned",
    "cnn_stroke_model": "CNN",
}
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass
class ModelSource:
    name: str
    title: str
    path: Path | None  # None when a live keras.Model was passed in
    model: Any = None  # a keras.Model, set when passed in or once loaded


def _is_model_folder(path: Path) -> bool:
    return path.is_dir() and (
        (path / "saved_model.pb").is_file() or (path / "config.json").is_file()
    )


def _find(folder: Path, name: str) -> Path | None:
    for suffix in MODEL_SUFFIXES:
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return folder / name if _is_model_folder(folder / name) else None


def title_for(name: str) -> str:
    return REFERENCE_TITLES.get(name, name)


def find_models(models: Path | str | Mapping[str, Any]) -> list[ModelSource]:
    """The models to explain, in the reference order (Base, Fine-tuned, CNN) when present."""
    if isinstance(models, Mapping):
        if not models:
            raise HemifaceError("no models given to explain")
        sources = []
        for name, item in models.items():
            if isinstance(item, (str, Path)):
                sources.append(ModelSource(name, title_for(name), Path(item)))
            else:
                sources.append(ModelSource(name, title_for(name), None, item))
        return sources
    folder = Path(models)
    if not folder.exists():
        raise HemifaceError(f"{folder}: no such models folder")
    if not folder.is_dir():
        raise HemifaceError(f"{folder}: --models must be a folder of Keras models")
    found = [(name, _find(folder, name)) for name in REFERENCE_TITLES]
    sources = [ModelSource(name, title_for(name), path) for name, path in found if path]
    if sources:
        return sources
    others = sorted(
        p
        for p in folder.iterdir()
        if (p.is_file() and p.suffix.lower() in MODEL_SUFFIXES) or _is_model_folder(p)
    )
    if not others:
        expected = ", ".join(f"{name}.h5|.keras" for name in REFERENCE_TITLES)
        raise HemifaceError(f"{folder}: no Keras models found (expected {expected})")
    from hemiface.convert.keras_io import model_name_for

    return [ModelSource(model_name_for(p), title_for(model_name_for(p)), p) for p in others]


def load_model(source: ModelSource, unsafe: bool = False) -> tuple[Any, dict]:
    """The keras.Model of `source` and facts about its file (format, sha256)."""
    if source.model is not None:
        return source.model, {"source": None, "source_format": "in-memory", "sha256": None}
    from hemiface.convert.keras_io import load_keras_model

    loaded = load_keras_model(source.path, unsafe=unsafe)
    facts = {
        "source": str(source.path),
        "source_format": loaded.source_format,
        "sha256": loaded.sha256,
    }
    return loaded.model, facts
