"""Which Keras models to explain: a folder of the three reference models, or a mapping.

A folder is searched for the three reference names with any format convert accepts
(.keras, .h5, a SavedModel folder; Keras 3 or Keras 2); a folder holding none of them has
every Keras model in it explained instead. When a name has several files (say a .keras
and an .h5), the first that loads is explained. Loading goes through
hemiface.kerasio, the loader convert and bench use, which gives one-line errors
for a missing, unsafe or wrongly shaped model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hemiface.core.domain import MODEL_NAMES, model_title
from hemiface.core.errors import HemifaceError

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass
class ModelSource:
    name: str
    title: str
    path: Path | None  # None when a live keras.Model was passed in
    model: Any = None  # a keras.Model, set when passed in or once loaded
    alternatives: list[Path] = field(default_factory=list)  # other files of the same name


def _is_model_folder(path: Path) -> bool:
    return path.is_dir() and (
        (path / "saved_model.pb").is_file() or (path / "config.json").is_file()
    )


def _find(folder: Path, name: str) -> list[Path]:
    """Every file or SavedModel folder of model `name`, in the order they are tried."""
    found = [folder / f"{name}{suffix}" for suffix in MODEL_SUFFIXES]
    found = [path for path in found if path.is_file()]
    return found + ([folder / name] if _is_model_folder(folder / name) else [])


def find_models(models: Path | str | Mapping[str, Any]) -> list[ModelSource]:
    """The models to explain, in the reference order (Base, Fine-tuned, CNN) when present."""
    if isinstance(models, Mapping):
        if not models:
            raise HemifaceError("no models given to explain")
        sources = []
        for name, item in models.items():
            if isinstance(item, (str, Path)):
                sources.append(ModelSource(name, model_title(name), Path(item)))
            else:
                sources.append(ModelSource(name, model_title(name), None, item))
        return sources
    folder = Path(models)
    if not folder.exists():
        raise HemifaceError(f"{folder}: no such models folder")
    if not folder.is_dir():
        raise HemifaceError(f"{folder}: --models must be a folder of Keras models")
    found = [(name, _find(folder, name)) for name in MODEL_NAMES]
    sources = [
        ModelSource(name, model_title(name), paths[0], alternatives=paths[1:])
        for name, paths in found
        if paths
    ]
    if sources:
        return sources
    others = sorted(
        p
        for p in folder.iterdir()
        if (p.is_file() and p.suffix.lower() in MODEL_SUFFIXES) or _is_model_folder(p)
    )
    if not others:
        expected = ", ".join(f"{name}.h5|.keras" for name in MODEL_NAMES)
        raise HemifaceError(f"{folder}: no Keras models found (expected {expected})")
    from hemiface.kerasio import model_name_for

    return [ModelSource(model_name_for(p), model_title(model_name_for(p)), p) for p in others]


def load_model(
    source: ModelSource, unsafe: bool = False, custom_objects: dict[str, Any] | None = None
) -> tuple[Any, dict]:
    """The keras.Model of `source` and facts about its file (format, loader, sha256).

    The source's files are tried in order; the first that loads wins. When none does,
    the first file's error is raised (it is the one the user most likely meant)."""
    if source.model is not None:
        return source.model, {
            "source": None,
            "source_format": "in-memory",
            "loader": "in-memory",
            "sha256": None,
        }
    from hemiface.kerasio import ModelLoadError, load_keras_model

    first_error: ModelLoadError | None = None
    for path in [source.path, *source.alternatives]:
        if path is None:
            continue
        try:
            loaded = load_keras_model(path, unsafe=unsafe, custom_objects=custom_objects)
        except ModelLoadError as exc:
            first_error = first_error or exc
            continue
        facts = {
            "source": str(path),
            "source_format": loaded.source_format,
            "loader": loaded.loader,
            "sha256": loaded.sha256,
        }
        return loaded.model, facts
    raise first_error or HemifaceError(f"{source.name}: no model file to load")
