"""The schema of results.json (JSON Schema draft 2020-12 subset) and a small validator.

The rows it describes are the records of rows.py (a test keeps the two naming the same
fields).

The validator understands the keywords this schema uses (type, properties, required,
items, enum, additionalProperties, minimum), so checking needs no extra package; the
schema itself is standard and a full validator (e.g. `jsonschema`) accepts it too.
"""

from __future__ import annotations

from typing import Any

RESULTS_SCHEMA_VERSION = 1

_NUM = {"type": ["number", "null"]}
_INT = {"type": ["integer", "null"]}
_STR = {"type": ["string", "null"]}

LATENCY_ROW = {
    "type": "object",
    "required": [
        "model",
        "engine",
        "engine_label",
        "format",
        "threads",
        "status",
        "error",
        "n",
        "median_ms",
        "p90_ms",
        "p99_ms",
        "mean_ms",
        "std_ms",
        "init_s",
        "first_inference_s",
        "cold_start_s",
        "peak_rss_mb",
        "file_size_bytes",
        "macs",
        "gmacs_per_s",
    ],
    "properties": {
        "model": {"type": "string"},
        "title": {"type": "string"},
        "engine": {"enum": ["keras_predict", "keras_call", "tflite"]},
        "engine_label": {"type": "string"},
        "format": _STR,
        "threads": {"type": "integer", "minimum": 1},
        "status": {"enum": ["ok", "failed"]},
        "error": _STR,
        "n": _INT,
        "median_ms": _NUM,
        "p90_ms": _NUM,
        "p99_ms": _NUM,
        "mean_ms": _NUM,
        "std_ms": _NUM,
        "min_ms": _NUM,
        "max_ms": _NUM,
        "import_s": _NUM,
        "init_s": _NUM,
        "preprocess_s": _NUM,
        "first_inference_s": _NUM,
        "cold_start_s": _NUM,
        "peak_rss_mb": _NUM,
        "rss_ready_mb": _NUM,
        "file_size_bytes": _INT,
        "macs": _INT,
        "gmacs_per_s": _NUM,
        "fraction_of_machine": _NUM,
        "p": _NUM,
        "backend": _STR,
        "delegate_partitions": _INT,
        "undelegated_ops": {"type": ["array", "null"], "items": {"type": "string"}},
        "samples_ms": {"type": "array", "items": {"type": "number"}},
    },
}

PAIR = {
    "type": "object",
    "required": ["n", "label_agreement", "flips", "mean_abs_dp", "p99_abs_dp", "max_abs_dp"],
    "properties": {
        "model": {"type": "string"},
        "format": {"type": "string"},
        "n": {"type": "integer", "minimum": 1},
        "label_agreement": {"type": "number", "minimum": 0},
        "flips": {"type": "integer", "minimum": 0},
        "mean_abs_dp": {"type": "number", "minimum": 0},
        "p99_abs_dp": {"type": "number", "minimum": 0},
        "max_abs_dp": {"type": "number", "minimum": 0},
        "abs_dp": {"type": "array", "items": {"type": "number"}},
    },
}

QUALITY = {
    "type": "object",
    "required": ["model", "variant", "n", "accuracy", "roc_auc", "ece", "flip_consistency"],
    "properties": {
        "model": {"type": "string"},
        "variant": {"type": "string"},
        "n": {"type": "integer"},
        "accuracy": {"type": "number", "minimum": 0},
        "roc_auc": _NUM,
        "ece": {"type": "number", "minimum": 0},
        "flip_consistency": {"type": "number", "minimum": 0},
        "mean_p": {"type": "number"},
    },
}

SECTION_STATUS = {"enum": ["ok", "skipped", "failed"]}

_TIMING = {"type": "object", "required": ["n", "median_ms"], "properties": {"median_ms": _NUM}}
SET_ROW = {
    "type": "object",
    "required": ["format", "fused", "concurrency", "threads", "toolkit", "bare"],
    "properties": {
        "format": {"type": "string"},
        "fused": {"type": "boolean"},
        "concurrency": {"enum": ["sequential", "threads"]},
        "threads": {"type": "integer", "minimum": 1},
        "interpreters": {"type": "integer", "minimum": 1},
        "toolkit": _TIMING,
        "bare": _TIMING,
        "overhead_pct": _NUM,
        "vs_reference": _NUM,
        "bare_vs_reference": _NUM,
    },
}

RESULTS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "hemiface benchmark results",
    "type": "object",
    "required": [
        "schema_version",
        "command",
        "created_utc",
        "machine",
        "settings",
        "models",
        "headline",
        "latency",
        "agreement",
        "pipeline",
    ],
    "properties": {
        "schema_version": {"type": "integer", "enum": [RESULTS_SCHEMA_VERSION]},
        "command": {"type": "string"},
        "argv": {"type": "array", "items": {"type": "string"}},
        "created_utc": {"type": "string"},
        "duration_s": {"type": "number"},
        "machine": {"type": "object", "required": ["python", "cpu_model", "logical_cpus"]},
        "settings": {"type": "object", "required": ["sections", "models", "formats", "threads"]},
        "models": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "title", "formats", "keras_source"],
                "properties": {
                    "name": {"type": "string"},
                    "title": {"type": "string"},
                    "formats": {"type": "array", "items": {"type": "string"}},
                    "keras_source": _STR,
                },
            },
        },
        "headline": {"type": "array", "items": {"type": "string"}},
        "latency": {
            "type": "object",
            "required": ["status", "rows"],
            "properties": {
                "status": SECTION_STATUS,
                "rows": {"type": "array", "items": LATENCY_ROW},
                "machine_reference": {"type": "array"},
                "speedup_over_predict": {"type": "array"},
                "speedup_over_float32": {"type": "array"},
            },
        },
        "agreement": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": SECTION_STATUS,
                "vs_source": {"type": "array", "items": PAIR},
                "quality": {"type": "array", "items": QUALITY},
                "between_models": {"type": "array"},
            },
        },
        "pipeline": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": SECTION_STATUS, "rows": {"type": "array"}},
        },
        "set": {
            "type": "object",
            "required": ["status", "rows"],
            "properties": {"status": SECTION_STATUS, "rows": {"type": "array", "items": SET_ROW}},
        },
        "delegation": {
            "type": "object",
            "required": ["status", "rows"],
            "properties": {"status": SECTION_STATUS, "rows": {"type": "array"}},
        },
    },
}

_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def validate(value: Any, schema: dict[str, Any] = RESULTS_SCHEMA, where: str = "$") -> list[str]:
    """Every way `value` breaks `schema`, as 'path: problem' strings (empty when valid)."""
    problems: list[str] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, n) for n in names):
            return [f"{where}: expected {' or '.join(names)}, found {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and _is_type(value, "number") and value < schema["minimum"]:
        problems.append(f"{where}: {value} is below {schema['minimum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"{where}: missing {key!r}")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                problems += validate(value[key], sub, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += validate(item, schema["items"], f"{where}[{i}]")
    return problems
