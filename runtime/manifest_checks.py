"""Strict reading of a manifest's JSON: every value built into its typed record, unknown
keys refused with the field's name, and the values the types allow but the runtime cannot
use (a threshold outside [0, 1], a size of zero, a model listed twice) refused too."""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Union

from hemiface.runtime.errors import ManifestError
from hemiface.runtime.manifest_schema import (
    FORMATS,
    MAX_INPUT_SIDE,
    FusedEntry,
    Manifest,
    ModelEntry,
)


def check_semantics(manifest: Manifest, path: Path) -> None:
    """Values the types allow but the runtime cannot use: each refused naming its field."""
    seen: set[tuple[str, str]] = set()
    for entry in manifest.models:
        where = f"{path}: model {entry.name!r} ({entry.format})"
        problem = _entry_problem(entry)
        if problem is not None:
            raise ManifestError(f"{where}: {problem}")
        if (entry.name, entry.format) in seen:
            raise ManifestError(f"{where}: listed twice")
        seen.add((entry.name, entry.format))
    for detector in manifest.detectors:
        file = Path(detector.file)
        if not detector.file.strip() or file.is_absolute() or ".." in file.parts:
            raise ManifestError(
                f"{path}: detector {detector.name!r}: file must be a plain name inside the set"
            )
    for fused in manifest.fused:
        where = f"{path}: fused artifact {fused.name!r} ({fused.format})"
        problem = _fused_problem(fused, seen)
        if problem is not None:
            raise ManifestError(f"{where}: {problem}")


def _fused_problem(fused: FusedEntry, models: set[tuple[str, str]]) -> str | None:
    """What is wrong with one fused entry's values, or None (`models`: (name, format) of
    the set's model entries)."""
    if fused.format not in FORMATS:
        return f"format must be one of {', '.join(FORMATS)}"
    file = Path(fused.file)
    if not fused.file.strip() or file.is_absolute() or ".." in file.parts or "\\" in fused.file:
        return "file must be a plain name inside the model set"
    if len(fused.sha256) != 64 or any(c not in "0123456789abcdef" for c in fused.sha256):
        return f"sha256 must be 64 lowercase hex digits (got {fused.sha256[:70]!r})"
    served = fused.models
    if len(served) < 2 or len(set(served)) != len(served):
        return f"outputs must serve two or more different models (got {served})"
    indexes = [o.index for o in fused.outputs]
    if min(indexes) < 0 or len(set(indexes)) != len(indexes):
        return f"outputs must have different non-negative indexes (got {indexes})"
    missing = [m for m in served if (m, fused.format) not in models]
    if missing:
        return f"serves {', '.join(missing)}, which the set has no {fused.format} entry for"
    return None


def _entry_problem(entry: ModelEntry) -> str | None:
    """What is wrong with one model entry's values, or None."""
    if not entry.name.strip():
        return "name must not be empty"
    if entry.format not in FORMATS:
        return f"format must be one of {', '.join(FORMATS)}"
    file = Path(entry.file)
    if not entry.file.strip() or file.is_absolute() or ".." in file.parts or "\\" in entry.file:
        return "file must be a plain name inside the model set"
    if len(entry.sha256) != 64 or any(c not in "0123456789abcdef" for c in entry.sha256):
        return f"sha256 must be 64 lowercase hex digits (got {entry.sha256[:70]!r})"
    if entry.size_bytes < 1:
        return f"size_bytes must be positive (got {entry.size_bytes})"
    labels = entry.labels
    if len(labels) != 2 or labels[0] == labels[1] or not all(label.strip() for label in labels):
        return f"labels must be two different names (got {labels})"
    if entry.positive_label not in labels:
        return f"positive_label must be one of the labels {labels} (got {entry.positive_label!r})"
    if not (math.isfinite(entry.threshold) and 0.0 < entry.threshold < 1.0):
        return f"threshold must be a probability strictly between 0 and 1 (got {entry.threshold})"
    band = entry.uncertainty_band
    if len(band) != 2 or not all(math.isfinite(v) for v in band):
        return f"uncertainty_band must be [low, high] (got {band})"
    if not 0.0 <= band[0] <= band[1] <= 1.0:
        return f"uncertainty_band must be [low, high] with 0 <= low <= high <= 1 (got {band})"
    spec = entry.preprocessing
    if spec.color_order not in ("RGB", "BGR"):
        return f"preprocessing.color_order must be RGB or BGR (got {spec.color_order!r})"
    if spec.resize not in ("nearest", "bilinear", "area"):
        return f"preprocessing.resize must be nearest, bilinear or area (got {spec.resize!r})"
    for side in ("width", "height"):
        value = getattr(spec, side)
        if not 1 <= value <= MAX_INPUT_SIDE:
            return f"preprocessing.{side} must be between 1 and {MAX_INPUT_SIDE} (got {value})"
    if not (math.isfinite(spec.scale) and spec.scale != 0 and math.isfinite(spec.offset)):
        return (
            f"preprocessing.scale must be a non-zero number and offset a number "
            f"(got {spec.scale}, {spec.offset})"
        )
    for role, tensor in (("input", entry.input), ("output", entry.output)):
        if not tensor.shape or any(dim < 1 for dim in tensor.shape):
            return f"{role}.shape must list positive sizes (got {tensor.shape})"
        quant = tensor.quantization
        if quant is not None and not (math.isfinite(quant.scale) and quant.scale > 0):
            return f"{role}.quantization.scale must be a positive number (got {quant.scale})"
    return None


def which_model(message: str, data: dict[str, Any]) -> str:
    """ " (model 'name', format)" for a schema error inside models[i], to find it by name."""
    match = re.match(r"models\[(\d+)\]", message)
    models = data.get("models")
    if match is None or not isinstance(models, list) or int(match.group(1)) >= len(models):
        return ""
    item = models[int(match.group(1))]
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        return ""
    fmt = item.get("format")
    return f" (model {item['name']!r}" + (f", {fmt})" if isinstance(fmt, str) else ")")


class SchemaError(Exception):
    pass


def from_json(cls: Any, value: Any, where: str) -> Any:
    """Build `cls` (a dataclass or a typing annotation) from parsed JSON, strictly."""
    origin = typing.get_origin(cls)
    if origin in (Union, types.UnionType):
        options = typing.get_args(cls)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return from_json(option, value, where)
            except SchemaError as exc:
                errors.append(str(exc))
        raise SchemaError(errors[0] if errors else f"{where}: unexpected null")
    if origin is list:
        if not isinstance(value, list):
            raise SchemaError(f"{where} must be a list, found {_kind(value)}")
        (item,) = typing.get_args(cls)
        return [from_json(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise SchemaError(f"{where} must be an object, found {_kind(value)}")
        _, item = typing.get_args(cls)
        return {str(k): from_json(item, v, _join(where, str(k))) for k, v in value.items()}
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        if not isinstance(value, dict):
            raise SchemaError(f"{where} must be an object, found {_kind(value)}")
        hints = typing.get_type_hints(cls)
        known = [f.name for f in dataclasses.fields(cls)]
        for key in value:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = (
                    f"; did you mean {close[0]!r}?"
                    if close
                    else " (a typo, or a manifest from a newer hemiface?)"
                )
                raise SchemaError(f"{_join(where, str(key))}: unknown field{hint}")
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in value:
                kwargs[f.name] = from_json(hints[f.name], value[f.name], _join(where, f.name))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SchemaError(f"{_join(where, f.name)} is missing")
        return cls(**kwargs)
    if cls is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(f"{where} must be a number, found {_kind(value)}")
        try:
            return float(value)
        except OverflowError:  # an integer literal beyond any float
            raise SchemaError(f"{where} is out of range") from None
    if cls is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(f"{where} must be an integer, found {_kind(value)}")
        return value
    if cls in (str, bool):
        if not isinstance(value, cls):
            raise SchemaError(f"{where} must be a {cls.__name__}, found {_kind(value)}")
        return value
    if cls is Any:
        return value
    raise SchemaError(f"{where}: unsupported schema type {cls!r}")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
