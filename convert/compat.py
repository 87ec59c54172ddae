"""Which interpreters can run a .tflite file: op versions, minimum runtime, real loads.

Two sources say how old a runtime may be:
- the converter's own `min_runtime_version` metadata, computed by TF 2.21 from its
  compiled-in op-version table (tensorflow/lite/tools/versioning/runtime_version.cc);
- `KNOWN_MIN_RUNTIME` below, a few entries of that table for the ops these models use,
  copied from the TensorFlow source (and FULLY_CONNECTED v12 -> 2.17, measured: TF 2.21
  writes 2.17.0 for it and tflite-runtime 2.14 refuses it). It is a cross-check and a
  fallback when the metadata is missing; the larger of the two wins.
The only ground truth is loading the file, which `load_checks` does in every interpreter
it can reach: in this process (ai-edge-litert, tflite-runtime) and in another Python
(e.g. a virtual environment with tflite-runtime 2.14 and numpy<2) through a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hemiface.convert.flatbuffer import read_metadata, read_operator_codes
from hemiface.core.errors import one_line
from hemiface.core.quiet import quiet_fds
from hemiface.kerasio import QUIET_TF_ENV
from hemiface.runtime.manifest import LoadCheck, OpVersion

# The oldest runtime named by each --target, and its interpreter package.
TARGETS: dict[str, str] = {"tflite-runtime-2.14": "2.14.0"}
RUNTIME_PYTHON_ENV = "HEMIFACE_TFLITE_RUNTIME_PYTHON"

# (op, version) -> oldest TF Lite runtime, from runtime_version.cc (subset for these models).
KNOWN_MIN_RUNTIME: dict[tuple[str, int], str] = {
    ("ADD", 1): "1.5.0",
    ("ADD", 2): "1.14.0",
    ("ADD", 3): "2.4.0",
    ("ADD", 4): "2.6.0",
    ("AVERAGE_POOL_2D", 1): "1.5.0",
    ("AVERAGE_POOL_2D", 2): "1.14.0",
    ("AVERAGE_POOL_2D", 3): "2.3.0",
    ("CONV_2D", 1): "1.5.0",
    ("CONV_2D", 2): "1.14.0",
    ("CONV_2D", 3): "1.14.0",
    ("CONV_2D", 4): "2.3.0",
    ("CONV_2D", 5): "2.4.0",
    ("CONV_2D", 6): "2.9.0",
    ("DEPTHWISE_CONV_2D", 1): "1.5.0",
    ("DEPTHWISE_CONV_2D", 2): "1.12.0",
    ("DEPTHWISE_CONV_2D", 3): "1.14.0",
    ("DEPTHWISE_CONV_2D", 4): "2.2.0",
    ("DEPTHWISE_CONV_2D", 5): "2.3.0",
    ("DEPTHWISE_CONV_2D", 6): "2.3.0",
    ("DEQUANTIZE", 1): "1.13.1",
    ("DEQUANTIZE", 2): "1.14.0",
    ("DEQUANTIZE", 3): "1.15.0",
    ("DEQUANTIZE", 4): "2.2.0",
    ("DEQUANTIZE", 5): "2.7.0",
    ("FULLY_CONNECTED", 1): "1.5.0",
    ("FULLY_CONNECTED", 2): "1.10.0",
    ("FULLY_CONNECTED", 3): "1.14.0",
    ("FULLY_CONNECTED", 4): "1.14.0",
    ("FULLY_CONNECTED", 5): "2.0.0",
    ("FULLY_CONNECTED", 6): "2.1.0",
    ("FULLY_CONNECTED", 7): "2.3.0",
    ("FULLY_CONNECTED", 8): "2.3.0",
    ("FULLY_CONNECTED", 9): "2.3.0",
    ("FULLY_CONNECTED", 10): "2.11.0",
    ("FULLY_CONNECTED", 12): "2.17.0",
    ("LOGISTIC", 1): "1.14.0",
    ("LOGISTIC", 2): "1.14.0",
    ("LOGISTIC", 3): "2.3.0",
    ("MAX_POOL_2D", 1): "1.5.0",
    ("MAX_POOL_2D", 2): "1.14.0",
    ("MAX_POOL_2D", 3): "2.3.0",
    ("MEAN", 1): "1.6.0",
    ("MEAN", 2): "1.14.0",
    ("MEAN", 3): "2.4.0",
    ("MUL", 1): "1.5.0",
    ("MUL", 2): "1.14.0",
    ("MUL", 3): "1.15.0",
    ("MUL", 4): "2.3.0",
    ("MUL", 5): "2.6.0",
    ("MUL", 6): "2.11.0",
    ("PAD", 1): "1.5.0",
    ("PAD", 2): "1.14.0",
    ("PAD", 3): "2.4.0",
    ("PAD", 4): "2.6.0",
    ("QUANTIZE", 1): "1.14.0",
    ("QUANTIZE", 2): "1.15.0",
    ("QUANTIZE", 3): "2.7.0",
    ("RELU", 1): "1.5.0",
    ("RELU", 2): "2.1.0",
    ("RELU", 3): "2.5.0",
    ("RELU6", 1): "1.5.0",
    ("RELU6", 2): "1.14.0",
    ("RELU6", 3): "2.5.0",
    ("RESHAPE", 1): "1.5.0",
    ("SUB", 1): "1.6.0",
    ("SUB", 2): "1.14.0",
    ("SUB", 3): "2.3.0",
}

# A tiny program run by another Python to try loading models there. It prints one JSON
# object {path: "ok" | "error: ..."} (LoadCheck's manifest text, written here without
# importing hemiface); it must work on numpy<2 and Python 3.9+.
_LOAD_PROBE = r"""
import json, sys
try:
    from tflite_runtime.interpreter import Interpreter
    import importlib.metadata as md
    label = "tflite-runtime " + md.version("tflite-runtime")
except ImportError:
    from ai_edge_litert.interpreter import Interpreter
    import importlib.metadata as md
    label = "ai-edge-litert " + md.version("ai-edge-litert")
import numpy as np
results = {}
for path in sys.argv[1:]:
    try:
        interpreter = Interpreter(model_path=path)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        interpreter.invoke()
        results[path] = "ok"
    except Exception as exc:
        results[path] = "error: " + " ".join(str(exc).split())[:300]
print(json.dumps({"runtime": label, "results": results}))
"""


@dataclass
class OpReport:
    ops: list[OpVersion]  # distinct (op, version) pairs in file order
    min_runtime: str  # e.g. "2.17.0"; the larger of converter metadata and our table
    blocking: list[str]  # the ops that set min_runtime, e.g. ["FULLY_CONNECTED v12"]


def builtin_op_names() -> dict[int, str]:
    """Builtin operator code -> name, from the schema module shipped with ai-edge-litert."""
    try:
        from ai_edge_litert.schema_py_generated import BuiltinOperator
    except ImportError:  # pragma: no cover - TensorFlow ships the same generated schema
        from tensorflow.lite.python.schema_py_generated import BuiltinOperator
    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.strip().split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def analyze_ops(content: bytes) -> OpReport:
    names = builtin_op_names()
    ops: list[OpVersion] = []
    for code in read_operator_codes(content):
        name = code.custom_code or names.get(code.builtin_code, f"BUILTIN_{code.builtin_code}")
        op = OpVersion(name, code.version)
        if op not in ops:
            ops.append(op)
    reported = read_metadata(content).get("min_runtime_version", b"").split(b"\0")[0].decode()
    best = reported or "1.5.0"
    for op in ops:
        known = KNOWN_MIN_RUNTIME.get((op.op, op.version))
        if known and version_tuple(known) > version_tuple(best):
            best = known
    # Name the ops that force a newer runtime than the oldest table entries.
    blocking = [
        f"{op.op} v{op.version}"
        for op in ops
        if version_tuple(best) > (2, 3)
        and KNOWN_MIN_RUNTIME.get((op.op, op.version))
        and version_tuple(KNOWN_MIN_RUNTIME[(op.op, op.version)]) == version_tuple(best)
    ]
    return OpReport(ops, best, blocking)


def describe_min_runtime(report: OpReport) -> str:
    """E.g. "TFLite runtime 2.17.0+ (FULLY_CONNECTED v12)"."""
    why = f" ({', '.join(report.blocking)})" if report.blocking else ""
    return f"TFLite runtime {report.min_runtime}+{why}"


def target_problem(report: OpReport, target: str) -> str | None:
    """Why an artifact cannot run on `target`, or None when its ops allow it."""
    needed = TARGETS[target]
    if version_tuple(report.min_runtime) <= version_tuple(needed):
        return None
    why = ", ".join(report.blocking) or "its op versions"
    hint = ""
    if "FULLY_CONNECTED v12" in report.blocking:
        # TF marks hybrid FC weights per-channel whenever #scales == #output units, so a
        # Dense layer with one output unit (a sigmoid head) is always v12, per-tensor or not.
        hint = (
            "; a dynamic-range Dense layer with a single output unit is always FULLY_CONNECTED "
            "v12: use float16 or int8 for this target"
        )
    return f"needs TFLite runtime {report.min_runtime} ({why}); {target} is {needed}{hint}"


def load_in_process(content: bytes, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Load and invoke once in each interpreter importable here but those in `skip` (the
    one that already ran it); runtime label -> result."""
    import numpy as np

    from hemiface.runtime.backends import installed_backends, resolve_backend

    results: dict[str, str] = {}
    for name in installed_backends():
        if name == "tensorflow" or name in skip:
            continue  # the converter's own runtime says nothing about the device
        try:
            backend = resolve_backend(name)
        except Exception as exc:  # noqa: BLE001 - a broken install is a result too
            results[name] = LoadCheck(one_line(exc)).to_manifest()
            continue
        try:
            with quiet_fds():
                interpreter = backend.make_interpreter(content, num_threads=1)
            detail = interpreter.get_input_details()[0]
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
            interpreter.invoke()
            results[backend.label] = LoadCheck().to_manifest()
        except Exception as exc:  # noqa: BLE001
            results[backend.label] = LoadCheck(one_line(exc)).to_manifest()
    return results


def runtime_pythons(explicit: list[Path] | None = None) -> list[Path]:
    """Other Pythons to try loading in: given ones, else $HEMIFACE_TFLITE_RUNTIME_PYTHON."""
    if explicit:
        return [Path(p) for p in explicit]
    value = os.environ.get(RUNTIME_PYTHON_ENV)
    return [Path(p) for p in value.split(os.pathsep) if p] if value else []


def load_in_python(python: Path, paths: list[Path], timeout: float = 300) -> dict[Path, dict]:
    """Try each model file in another Python; {path: {runtime label: result}}."""
    if not paths:
        return {}
    try:
        completed = subprocess.run(
            [str(python), "-c", _LOAD_PROBE, *[str(p) for p in paths]],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **QUIET_TF_ENV},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        message = LoadCheck(f"cannot run {python} ({exc})").to_manifest()
        return {p: {str(python): message} for p in paths}
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr.strip().splitlines() or ["no output"])[-1][:300]
        failed = LoadCheck(f"{python} failed ({tail})").to_manifest()
        return {p: {str(python): failed} for p in paths}
    data = json.loads(lines[-1])
    missing = LoadCheck("no result").to_manifest()
    return {p: {data["runtime"]: data["results"].get(str(p), missing)} for p in paths}
