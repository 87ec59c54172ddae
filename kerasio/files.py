"""What a Keras model file holds, read before anything in it is deserialised.

Which Keras wrote it (the .h5 attributes `keras_version` and `backend`, the .keras
archive's `metadata.json`), its layer config (the .h5 `model_config` attribute, the
archive's `config.json`) and which layers in that config would run Python code on load
(Lambda layers, serialised Python lambdas). Reading these needs h5py and the standard
library only: no Keras, so a Lambda can be refused before any loader sees the file.
A Python file of custom layers, named by the user, is imported here too.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hemiface.core.errors import HemifaceError, one_line, shorten

# Layer classes whose config carries Python code that runs when the model is loaded or
# called: Keras's Lambda layer, and a Python lambda serialised inside another layer.
CODE_CLASSES = ("Lambda", "__lambda__")
# Top-level modules of the classes Keras itself ships (tf-keras records "keras" too).
KERAS_MODULES = ("keras", "tf_keras", "builtins")


class ModelLoadError(HemifaceError):
    """A model file is missing, unreadable, unsafe or not a single-sigmoid image model."""


@dataclass(frozen=True)
class KerasFileFacts:
    """Facts read from a .h5 or .keras file without deserialising it."""

    keras_version: str | None  # the Keras that saved it, e.g. "2.15.0"; None if not recorded
    config: dict[str, Any] | None  # the model's layer config, when the file has one

    @property
    def major(self) -> int | None:
        """The saving Keras's major version (2 or 3), or None when unknown."""
        if not self.keras_version:
            return None
        head = self.keras_version.split(".", 1)[0]
        return int(head) if head.isdigit() else None

    @property
    def is_keras2(self) -> bool:
        """Saved by Keras 2 (tf.keras up to TensorFlow 2.15, or tf-keras)."""
        return self.major is not None and self.major < 3


def read_facts(path: Path, source_format: str) -> KerasFileFacts:
    """The saving Keras version and the layer config of a .h5 file or a .keras archive."""
    path = Path(path)
    if source_format == "h5":
        return _h5_facts(path)
    if source_format == "keras":
        return _keras_archive_facts(path)
    return KerasFileFacts(None, None)


def _decode(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _h5_facts(path: Path) -> KerasFileFacts:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            attrs = handle.attrs
            version = _decode(attrs["keras_version"]) if "keras_version" in attrs else None
            config_text = _decode(attrs["model_config"]) if "model_config" in attrs else None
    except (OSError, KeyError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: cannot read the HDF5 file ({exc})") from None
    return KerasFileFacts(version, _parse_config(path, config_text, "model_config"))


def _keras_archive_facts(path: Path) -> KerasFileFacts:
    try:
        if path.is_dir():
            metadata = _read_text(path / "metadata.json")
            config_text = _read_text(path / "config.json")
        else:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
                metadata = (
                    archive.read("metadata.json").decode("utf-8")
                    if "metadata.json" in names
                    else None
                )
                config_text = (
                    archive.read("config.json").decode("utf-8") if "config.json" in names else None
                )
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: cannot read the .keras archive ({exc})") from None
    version = None
    if metadata is not None:
        try:
            data = json.loads(metadata)
        except json.JSONDecodeError:
            data = {}
        found = data.get("keras_version") if isinstance(data, dict) else None
        version = str(found) if found else None
    return KerasFileFacts(version, _parse_config(path, config_text, "config.json"))


def _read_text(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _parse_config(path: Path, text: str | None, where: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path}: its {where} is not valid JSON ({exc.msg})") from None
    return config if isinstance(config, dict) else None


def code_layers(config: Any) -> list[str]:
    """Names of the layers in a model config whose Python code would run on load."""
    found: list[str] = []
    if isinstance(config, dict):
        if config.get("class_name") in CODE_CLASSES:
            inner = config.get("config")
            name = inner.get("name") if isinstance(inner, dict) else None
            found.append(str(name or config["class_name"]))
        for value in config.values():
            found += code_layers(value)
    elif isinstance(config, list):
        for item in config:
            found += code_layers(item)
    return found


def custom_classes(config: Any) -> list[str]:
    """Classes in a model config that Keras does not ship: named by a module outside Keras,
    or registered under a package ("Package>Name"). Only configs that record the module
    (.keras archives) tell; an .h5 config names bare classes."""
    found: list[str] = []
    if isinstance(config, dict):
        name = config.get("class_name")
        module = config.get("module")
        registered = config.get("registered_name")
        if isinstance(name, str) and (
            (isinstance(module, str) and module.split(".", 1)[0] not in KERAS_MODULES)
            or (isinstance(registered, str) and ">" in registered)
        ):
            found.append(name)
        for value in config.values():
            found += custom_classes(value)
    elif isinstance(config, list):
        for item in config:
            found += custom_classes(item)
    return list(dict.fromkeys(found))


def keras_cause(exc: BaseException) -> str:
    """The reason Keras gave, on one line: the tail after its "Exception encountered:"
    wrapper (which otherwise fills the message with the whole layer config)."""
    text = " ".join(str(exc).split())
    marker = "Exception encountered:"
    if marker in text:
        text = text.rsplit(marker, 1)[1].strip()
    # Keras appends the failing object's whole config; the reason comes before it.
    for tail in (" Full object config:", " Received: config=", " config={"):
        if tail in text:
            text = text.split(tail, 1)[0].rstrip(" .,") + "."
    return shorten(text) or type(exc).__name__


def names_a_missing_class(cause: str) -> bool:
    """Does Keras's reason say it met a class it does not know (a custom layer)?"""
    lowered = cause.lower()
    return any(
        hint in lowered
        for hint in ("unknown layer", "could not locate class", "unknown object", "custom_object")
    )


def load_custom_objects(path: Path | str) -> dict[str, Any]:
    """Import a trusted Python file that defines (and may register) custom Keras objects.

    Returns the names Keras should resolve: the file's `custom_objects` (or
    `CUSTOM_OBJECTS`) dict when it has one, plus every class and function it defines.
    Importing runs the file's code, which is why the user must name it explicitly.
    """
    path = Path(path)
    if path.suffix != ".py":
        raise ModelLoadError(f"{path}: the custom-objects file must be a Python file (.py)")
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such custom-objects file")
    module_name = f"hemiface_custom_objects_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"{path}: cannot import it as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's code may raise anything
        sys.modules.pop(module_name, None)
        raise ModelLoadError(
            f"{path}: importing the custom-objects file failed "
            f"({type(exc).__name__}: {one_line(exc)})"
        ) from None
    found: dict[str, Any] = {
        name: value
        for name, value in vars(module).items()
        if (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == module_name
    }
    explicit = getattr(module, "custom_objects", None) or getattr(module, "CUSTOM_OBJECTS", None)
    if explicit is not None:
        if not isinstance(explicit, dict):
            raise ModelLoadError(f"{path}: custom_objects must be a dict of name -> class")
        found.update({str(k): v for k, v in explicit.items()})
    return found


def is_tf_keras_model(model: Any) -> bool:
    """Was `model` built by tf-keras (Keras 2) rather than Keras 3?"""
    return type(model).__module__.split(".", 1)[0] == "tf_keras"
