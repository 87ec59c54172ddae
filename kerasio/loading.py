"""Load a Keras laterality model (.h5, .keras or SavedModel folder) and check its shape.

One loader for every command (convert, explain, bench): Keras 3 files are read by
Keras 3; Keras 2 files (tf.keras up to TensorFlow 2.15, or tf-keras; told apart by the
file's recorded `keras_version`) by tf-keras, in this process, beside Keras 3; SavedModel
folders through `tf.saved_model`. Lambda layers are refused from the file's config before
any loader deserialises it, unless the caller passes `unsafe`.

Everything that can go wrong with a user's model file becomes one `ModelLoadError` line
naming the file and keeping the cause Keras gave: missing, not a model, a Lambda layer in
safe mode, a class Keras does not know (with the --custom-objects route), an input that
is not HxWx3, an output that is not one sigmoid unit. TensorFlow and Keras are imported
inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hemiface.core.checksum import sha256_file
from hemiface.core.errors import one_line, shorten
from hemiface.kerasio.files import (
    KerasFileFacts,
    ModelLoadError,
    code_layers,
    custom_classes,
    is_tf_keras_model,
    keras_cause,
    load_custom_objects,
    names_a_missing_class,
    read_facts,
)
from hemiface.kerasio.quiet import import_keras, quiet_tensorflow

__all__ = ["LOADERS", "LoadedModel", "ModelLoadError", "load_keras_model", "model_name_for"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
SOURCE_FORMATS = ("h5", "keras", "savedmodel")
# Which loader read a source, as the manifest records it.
LOADERS = ("keras", "tf_keras", "saved_model")
UNSAFE_ADVICE = "refused in safe mode (pass --unsafe only for a file you trust)"
CUSTOM_ROUTE = "--custom-objects FILE.py (its code runs: trusted files only)"
TF_KERAS_INSTALL = "pip install tf-keras (part of hemiface[workstation])"
CustomObjects = Path | str | dict[str, Any] | None


@dataclass
class LoadedModel:
    model: Any  # keras.Model with one HxWx3 input and one sigmoid unit as output
    name: str  # from the file name (stem), e.g. "mobilenetv2_base_model"
    source_format: str  # "h5", "keras" or "savedmodel"
    sha256: str  # of the file, or of a SavedModel folder's files (see sha256_source)
    path: Path
    loader: str = "keras"  # one of LOADERS: which loader read the source

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of the model input."""
        shape = tuple(self.model.inputs[0].shape[1:])
        return int(shape[0]), int(shape[1]), int(shape[2])


def import_tf_keras(path: Path) -> Any | None:
    """The tf-keras package (Keras 2 for this TensorFlow), or None when not installed."""
    quiet_tensorflow()
    try:
        import tf_keras
    except ImportError:
        return None
    except Exception as exc:  # noqa: BLE001 - a tf-keras built for another TensorFlow
        raise ModelLoadError(
            f"{path}: a Keras 2 file, but tf-keras does not import ({keras_cause(exc)}); "
            "tf-keras must match the installed TensorFlow (tf-keras 2.X for TensorFlow 2.X)"
        ) from None
    return tf_keras


def keras_module_for(model: Any) -> Any:
    """The Keras package that built `model`: tf_keras for a Keras 2 model, else Keras 3."""
    if is_tf_keras_model(model):
        import tf_keras

        return tf_keras
    return import_keras()


def sha256_source(path: Path) -> str:
    """sha256 of a model file; for a folder, of its relative paths and file contents."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(item.relative_to(path).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(item.read_bytes()).digest())
        return digest.hexdigest()
    return sha256_file(path)


def model_name_for(path: Path) -> str:
    """The model name a file stands for: its name without the model suffix."""
    path = Path(path)
    name = path.name.rstrip("/")
    for suffix in (".keras", ".h5", ".hdf5"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def detect_format(path: Path) -> str:
    """ "h5", "keras" or "savedmodel" from the content (not only the suffix)."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file or folder")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        if (path / "config.json").is_file():
            return "keras"
        raise ModelLoadError(
            f"{path}: a folder but not a SavedModel (no saved_model.pb) nor a Keras model"
        )
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if head == HDF5_MAGIC:
        return "h5"
    if head.startswith(ZIP_MAGIC) and zipfile.is_zipfile(path):
        return "keras"
    kind = "empty file" if not head else f"file starts with {head!r}"
    raise ModelLoadError(
        f"{path}: not a Keras model (expected HDF5 .h5, a .keras zip or a SavedModel folder; "
        f"{kind})"
    )


def load_keras_model(
    path: Path,
    unsafe: bool = False,
    output_index: int | None = None,
    custom_objects: CustomObjects = None,
) -> LoadedModel:
    """Load and validate a laterality model; the returned model has exactly one output.

    `unsafe` allows Lambda layers (their code runs on load: only for trusted files).
    `output_index` picks one output of a multi-output model. `custom_objects` is a
    trusted Python file that defines the model's custom layers (or a name -> class dict).
    """
    path = Path(path)
    source_format = detect_format(path)
    sha = sha256_source(path)
    objects = (
        load_custom_objects(custom_objects)
        if isinstance(custom_objects, Path | str)
        else dict(custom_objects or {})
    )
    if source_format == "savedmodel":
        model, loader = _load_savedmodel(path, import_keras()), "saved_model"
    else:
        facts = read_facts(path, source_format)
        if source_format == "h5" and facts.config is None:
            raise ModelLoadError(f"{path}: an HDF5 file without a model config (weights only?)")
        if not unsafe:
            _refuse_code(path, code_layers(facts.config))
        model, loader = _load_keras_file(path, source_format, facts, unsafe, objects)
    if not unsafe:
        _refuse_code(path, [layer.name for layer in _all_layers(model) if _is_lambda(layer)])
    keras = keras_module_for(model)
    model = _select_output(model, output_index, path, keras)
    _check_input(model, path)
    _check_sigmoid_output(model, path, keras)
    return LoadedModel(model, model_name_for(path), source_format, sha, path, loader)


def _is_lambda(layer: Any) -> bool:
    return type(layer).__name__ == "Lambda"


def _refuse_code(path: Path, names: list[str]) -> None:
    if names:
        raise ModelLoadError(
            f"{path}: has Lambda layer(s) {', '.join(dict.fromkeys(names))}, whose Python code "
            f"would run on load; {UNSAFE_ADVICE}"
        )


def _load_keras_file(
    path: Path,
    source_format: str,
    facts: KerasFileFacts,
    unsafe: bool,
    objects: dict[str, Any],
) -> tuple[Any, str]:
    """(model, loader): a Keras 2 file through tf-keras, anything else through Keras 3."""
    if facts.is_keras2:
        tf_keras = import_tf_keras(path)
        if tf_keras is not None:
            what = (
                f"tf-keras {tf_keras.__version__} cannot load this Keras {facts.keras_version} file"
            )
            model = _call_loader(tf_keras, path, source_format, unsafe, objects, facts, what)
            return model, "tf_keras"
    keras = import_keras()
    what, after = f"Keras {keras.__version__} cannot load it", ""
    if facts.is_keras2:
        what = f"Keras {keras.__version__} cannot load this Keras {facts.keras_version} file"
        after = f"; hemiface reads Keras 2 files with tf-keras: {TF_KERAS_INSTALL}"
    return _call_loader(keras, path, source_format, unsafe, objects, facts, what, after), "keras"


def _call_loader(
    keras: Any,
    path: Path,
    source_format: str,
    unsafe: bool,
    objects: dict[str, Any],
    facts: KerasFileFacts,
    what: str,
    after: str = "",
) -> Any:
    """`keras.models.load_model` on `path`; a failure becomes one ModelLoadError line:
    "<path>: <what> (<Keras's cause>)<advice><after>"."""
    # Keras picks the loader by suffix; a file with another suffix is loaded via a link.
    wanted = ".h5" if source_format == "h5" else ".keras"
    with tempfile.TemporaryDirectory(prefix="hemiface-load-") as tmp:
        target = path
        if path.suffix.lower() not in ((".h5", ".hdf5") if source_format == "h5" else (".keras",)):
            target = Path(tmp) / f"model{wanted}"
            target.symlink_to(path.resolve())
        try:
            return keras.models.load_model(
                target, custom_objects=objects or None, compile=False, safe_mode=not unsafe
            )
        except Exception as exc:  # noqa: BLE001 - every loader failure becomes one line
            raise _explain_load_failure(path, exc, facts, what, after) from None


def _explain_load_failure(
    path: Path, exc: Exception, facts: KerasFileFacts, what: str, after: str
) -> ModelLoadError:
    text = shorten(str(exc))
    if "Lambda" in text and "safe_mode" in text:
        return ModelLoadError(
            f"{path}: has a Lambda layer whose Python code would run on load; {UNSAFE_ADVICE}"
        )
    cause = f"{type(exc).__name__}: {keras_cause(exc)}"
    custom = custom_classes(facts.config)
    advice = ""
    if custom:
        advice = (
            f"; it uses classes Keras does not ship ({', '.join(custom)}): name the Python file "
            f"that defines them with {CUSTOM_ROUTE}"
        )
    elif names_a_missing_class(cause):
        advice = f"; if it uses custom layers, name the file that defines them with {CUSTOM_ROUTE}"
    return ModelLoadError(f"{path}: {what} ({cause}){advice}{after}")


def _load_savedmodel(path: Path, keras: Any) -> Any:
    """Wrap a SavedModel's serving signature as a one-input Keras model."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures["serving_default"]
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(
            f"{path}: cannot load the SavedModel or its serving_default signature ({one_line(exc)})"
        ) from None
    _, input_specs = signature.structured_input_signature
    if len(input_specs) != 1:
        raise ModelLoadError(
            f"{path}: the serving signature takes {len(input_specs)} inputs, expected one image"
        )
    (spec,) = input_specs.values()
    outputs = signature.structured_outputs
    layer = keras.layers.TFSMLayer(str(path), call_endpoint="serving_default")
    inputs = keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype.name, name="image")
    result = layer(inputs)
    if isinstance(result, dict):
        # Outputs in the signature's (sorted) key order, so --output-index is stable.
        result = [result[key] for key in sorted(outputs)]
        result = result[0] if len(result) == 1 else result
    return keras.Model(inputs, result, name=model_name_for(path))


def _all_layers(model: Any) -> list[Any]:
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        if hasattr(layer, "layers"):
            found.extend(_all_layers(layer))
    return found


def _select_output(model: Any, output_index: int | None, path: Path, keras: Any) -> Any:
    outputs = list(model.outputs)
    if len(outputs) == 1:
        if output_index not in (None, 0):
            raise ModelLoadError(f"{path}: --output-index {output_index}, but it has one output")
        return model
    if output_index is None:
        shapes = ", ".join(str(tuple(o.shape)) for o in outputs)
        raise ModelLoadError(
            f"{path}: has {len(outputs)} outputs ({shapes}); pick one with --output-index"
        )
    if not 0 <= output_index < len(outputs):
        raise ModelLoadError(
            f"{path}: --output-index {output_index} is out of range ({len(outputs)} outputs)"
        )
    return keras.Model(model.inputs, outputs[output_index], name=model.name)


def _check_input(model: Any, path: Path) -> None:
    inputs = list(model.inputs)
    if len(inputs) != 1:
        raise ModelLoadError(f"{path}: has {len(inputs)} inputs, expected one HxWx3 image")
    shape = tuple(inputs[0].shape)
    if len(shape) != 4 or shape[3] != 3 or shape[1] is None or shape[2] is None:
        raise ModelLoadError(
            f"{path}: input shape {shape} is not an image of fixed size (batch, H, W, 3)"
        )


def _check_sigmoid_output(model: Any, path: Path, keras: Any) -> None:
    output = model.outputs[0]
    shape = tuple(output.shape)
    activation = _output_activation(output)
    if shape[1:] != (1,):
        found = f", activation {activation}" if activation else ""
        raise ModelLoadError(
            f"{path}: output shape {shape}{found}; expected one sigmoid unit (batch, 1)"
        )
    if activation is not None and activation != "sigmoid":
        raise ModelLoadError(
            f"{path}: the output unit's activation is {activation}, expected sigmoid "
            "(the runtime reads the output as P(Right))"
        )
    if activation is None:
        # Opaque graph (e.g. a SavedModel): at least the values must be probabilities.
        import numpy as np

        h, w = int(model.inputs[0].shape[1]), int(model.inputs[0].shape[2])
        probe = np.random.default_rng(0).uniform(-3, 3, size=(2, h, w, 3)).astype("float32")
        values = np.asarray(model(probe, training=False))
        if not np.all((values >= 0) & (values <= 1)):
            raise ModelLoadError(
                f"{path}: the output is not a probability (values {values.ravel()[:2]} outside "
                "[0, 1]); expected one sigmoid unit"
            )


def _output_activation(output: Any) -> str | None:
    """Name of the activation that produces `output`, or None when it cannot be seen."""
    history = getattr(output, "_keras_history", None)
    if history is None:
        return None
    layer = history[0]
    kind = type(layer).__name__
    if kind == "Sigmoid":
        return "sigmoid"
    if kind == "Softmax":
        return "softmax"
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None if kind in ("TFSMLayer", "Functional", "Sequential") else kind
    name = getattr(activation, "__name__", None) or type(activation).__name__
    return str(name)
