"""Find a TFLite interpreter: ai-edge-litert, then tflite-runtime, then TensorFlow's tf.lite.

Nothing is imported until a backend is asked for, so `import hemiface.runtime` stays
cheap and never touches TensorFlow. `importer` and `version_of` are parameters so that
tests can stand in fakes for packages that are not installed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from hemiface.runtime.errors import BackendError

# (backend name, module holding Interpreter, distributions that provide it)
BACKEND_ORDER: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ai-edge-litert", "ai_edge_litert.interpreter", ("ai-edge-litert",)),
    ("tflite-runtime", "tflite_runtime.interpreter", ("tflite-runtime",)),
    ("tensorflow", "tensorflow.lite", ("tensorflow", "tensorflow-cpu")),
)
BACKEND_NAMES = tuple(name for name, _, _ in BACKEND_ORDER)
# Oversubscribing cores was catastrophic on tflite-runtime 2.14 (300-700 ms an image
# instead of ~60), and more than 4 threads buys nothing for these models.
MAX_DEFAULT_THREADS = 4
INSTALL_HINT = (
    "no TFLite interpreter is installed: pip install ai-edge-litert "
    "(32-bit Raspberry Pi OS: pip install 'hemiface[pi32]' for tflite-runtime 2.14)"
)

Importer = Callable[[str], ModuleType]
VersionOf = Callable[[str], str]


@dataclass(frozen=True)
class Backend:
    name: str
    version: str
    interpreter_class: Any  # the package's Interpreter class

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    def make_interpreter(self, model_content: bytes, num_threads: int | None = None) -> Any:
        """An allocated interpreter for a model given as bytes (already checksummed)."""
        interpreter = self.interpreter_class(model_content=model_content, num_threads=num_threads)
        interpreter.allocate_tensors()
        return interpreter


def _distribution_version(names: tuple[str, ...], version_of: VersionOf) -> str | None:
    for dist in names:
        try:
            return version_of(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def installed_backends(version_of: VersionOf = importlib.metadata.version) -> dict[str, str]:
    """Backends whose package is installed, with versions, in preference order.

    Reads package metadata only; imports nothing.
    """
    found: dict[str, str] = {}
    for name, _, dists in BACKEND_ORDER:
        version = _distribution_version(dists, version_of)
        if version is not None:
            found[name] = version
    return found


def resolve_backend(
    name: str | None = None,
    importer: Importer = importlib.import_module,
    version_of: VersionOf = importlib.metadata.version,
) -> Backend:
    """The first importable backend in BACKEND_ORDER, or exactly `name` when given."""
    if name is not None and name not in BACKEND_NAMES:
        raise BackendError(f"unknown backend {name!r}: choose one of {', '.join(BACKEND_NAMES)}")
    candidates = [entry for entry in BACKEND_ORDER if name is None or entry[0] == name]
    failures: list[str] = []
    for backend_name, module_name, dists in candidates:
        try:
            module = importer(module_name)
            interpreter_class = module.Interpreter
        except ImportError as exc:
            failures.append(f"{backend_name}: {exc}")
            continue
        except AttributeError:
            failures.append(f"{backend_name}: {module_name} has no Interpreter")
            continue
        version = _distribution_version(dists, version_of) or "unknown"
        return Backend(backend_name, version, interpreter_class)
    if name is not None:
        dist = dict((n, d[0]) for n, _, d in BACKEND_ORDER)[name]
        reason = failures[0].split(": ", 1)[1] if failures else "not importable"
        raise BackendError(f"backend {name} cannot be used ({reason}): pip install {dist}")
    raise BackendError(INSTALL_HINT)


def physical_cores(cpuinfo: Path = Path("/proc/cpuinfo")) -> int:
    """Physical cores available to this process (hyper-threads not counted).

    Linux: distinct (physical id, core id) pairs in /proc/cpuinfo, bounded by the CPU
    affinity mask. Elsewhere: os.cpu_count().
    """
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    logical = logical or os.cpu_count() or 1
    try:
        text = cpuinfo.read_text()
    except OSError:
        return logical
    cores: set[tuple[str, str]] = set()
    physical_id = core_id = ""
    for line in text.splitlines() + [""]:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            physical_id = value.strip()
        elif key == "core id":
            core_id = value.strip()
        elif not line.strip():
            if core_id:
                cores.add((physical_id, core_id))
            physical_id = core_id = ""
    return max(1, min(logical, len(cores))) if cores else logical


def default_num_threads() -> int:
    return min(physical_cores(), MAX_DEFAULT_THREADS)
