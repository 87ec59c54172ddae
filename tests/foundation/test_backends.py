from __future__ import annotations

import importlib.metadata
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest

from hemiface.runtime import backends
from hemiface.runtime.backends import (
    INSTALL_HINT,
    default_num_threads,
    physical_cores,
    resolve_backend,
)
from hemiface.runtime.errors import BackendError


def fake_world(present: set[str]):
    """An importer and a version lookup where only `present` backends are installed."""
    modules = {
        "ai_edge_litert.interpreter": "ai-edge-litert",
        "tflite_runtime.interpreter": "tflite-runtime",
        "tensorflow.lite": "tensorflow",
    }

    def importer(name: str) -> ModuleType:
        if modules.get(name) not in present:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        module = ModuleType(name)
        module.Interpreter = SimpleNamespace(origin=modules[name])  # type: ignore[attr-defined]
        return module

    def version_of(dist: str) -> str:
        if dist in present:
            return "9.9"
        raise importlib.metadata.PackageNotFoundError(dist)

    return importer, version_of


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ({"ai-edge-litert", "tflite-runtime", "tensorflow"}, "ai-edge-litert"),
        ({"tflite-runtime", "tensorflow"}, "tflite-runtime"),
        ({"tensorflow"}, "tensorflow"),
    ],
)
def test_resolution_order(present: set[str], expected: str) -> None:
    importer, version_of = fake_world(present)
    backend = resolve_backend(None, importer, version_of)
    assert backend.name == expected
    assert backend.interpreter_class.origin == expected
    assert backend.version == "9.9"


def test_override_picks_the_named_backend() -> None:
    importer, version_of = fake_world({"ai-edge-litert", "tensorflow"})
    assert resolve_backend("tensorflow", importer, version_of).name == "tensorflow"


def test_override_of_an_absent_backend_says_what_to_install() -> None:
    importer, version_of = fake_world({"ai-edge-litert"})
    with pytest.raises(BackendError, match="pip install tflite-runtime"):
        resolve_backend("tflite-runtime", importer, version_of)


def test_none_installed_gives_one_line() -> None:
    importer, version_of = fake_world(set())
    with pytest.raises(BackendError) as info:
        resolve_backend(None, importer, version_of)
    assert str(info.value) == INSTALL_HINT
    assert "pip install ai-edge-litert" in INSTALL_HINT


def test_unknown_backend_name() -> None:
    with pytest.raises(BackendError, match="unknown backend"):
        resolve_backend("onnx")


def test_installed_backends_reads_metadata_only() -> None:
    _, version_of = fake_world({"tflite-runtime"})
    assert backends.installed_backends(version_of) == {"tflite-runtime": "9.9"}


CPUINFO_2_CORES_4_THREADS = "\n".join(
    f"processor\t: {i}\nphysical id\t: 0\ncore id\t\t: {i // 2}\n" for i in range(4)
)


def test_physical_cores_counts_cores_not_threads(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO_2_CORES_4_THREADS)
    assert physical_cores(cpuinfo) == min(2, len(__import__("os").sched_getaffinity(0)))


def test_default_threads_capped() -> None:
    assert 1 <= default_num_threads() <= backends.MAX_DEFAULT_THREADS


def test_real_litert_interpreter_runs_a_model() -> None:
    """The installed default backend loads real bytes and invokes."""
    tf = pytest.importorskip("tensorflow")
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(1)])
    content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    backend = resolve_backend()
    assert backend.name == "ai-edge-litert"
    interpreter = backend.make_interpreter(content, num_threads=1)
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.ones((1, 4), np.float32))
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    expected = model(np.ones((1, 4), np.float32)).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)
