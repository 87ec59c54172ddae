"""One benchmark row in its own process: `python -m hemiface.benchmarks.worker '<json spec>'`.

A fresh process per row means the row's peak RSS (`ru_maxrss`) and its import and
initialisation costs are its own, and the moment of its first prediction measures cold
start. The last line on stdout is one JSON object: {"ok": true, ...figures} or
{"ok": false, "error": "..."} (with exit code 1).

Engines:
- "tflite": the runtime's path (no TensorFlow): manifest, checksummed model bytes,
  TFLiteClassifier, runtime image reading and preprocessing;
- "keras_predict": the notebook's path: TensorFlow, the Keras source loaded as convert and
  explain load it (Keras 3, tf-keras for a Keras 2 file, or a SavedModel folder), that
  Keras's `load_img`, `model.predict`;
- "keras_call": the same model called directly, `model(x, training=False)`;
- "machine": float32 matrix multiply with numpy, the machine's dense-arithmetic yardstick;
- "set": the whole model set, every configuration (benchmarks/set_latency.py);
- "pipeline": the live loop on a video (benchmarks/pipeline_fps.py);
- "batch": several of the above in this one process (the demo's profile).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.core.errors import one_line

MAX_SAMPLES = 100_000
MATMUL_SIZE = 768


def _peak_rss_mb() -> float:
    # Linux: VmHWM is this address space's own high-water mark. ru_maxrss is not: Linux
    # carries it across exec, so a worker spawned by a parent holding TensorFlow and
    # three models (the demo) reported the parent's 1.3 GB as its own peak.
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    # Elsewhere: ru_maxrss (kilobytes on Linux, bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _current_rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def time_runs(
    run: Callable[[], Any], warmup: int, n: int, min_time_s: float, max_time_s: float
) -> list[float]:
    """Milliseconds of single runs after `warmup` untimed ones: at least `n` runs and at
    least `min_time_s` seconds, but stop at `max_time_s` once three runs are in."""
    for _ in range(warmup):
        run()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < MAX_SAMPLES:
        elapsed = time.perf_counter() - start
        if len(samples) >= n and elapsed >= min_time_s:
            break
        if len(samples) >= 3 and elapsed >= max_time_s:
            break
        t0 = time.perf_counter()
        run()
        samples.append((time.perf_counter() - t0) * 1000.0)
    return samples


def _startup_figures(marks: tuple[float, float, float, float, float], p: float) -> dict[str, Any]:
    """Cold-start figures from perf_counter() marks taken at the start, after the imports,
    after loading, after preprocessing and after the first prediction (`p`); call it right
    after the last mark, so the wall-clock moment and the RSS are those of that prediction."""
    t0, t1, t2, t3, t4 = marks
    return {
        "import_s": t1 - t0,
        "init_s": t2 - t1,
        "preprocess_s": t3 - t2,
        "first_inference_s": t4 - t3,
        "first_prediction_at": time.time(),
        "rss_ready_mb": _current_rss_mb(),
        "p": p,
    }


def run_tflite(spec: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    from hemiface.runtime.backends import resolve_backend
    from hemiface.runtime.classifier import TFLiteClassifier
    from hemiface.runtime.images import read_image
    from hemiface.runtime.manifest import load_manifest
    from hemiface.runtime.preprocess import to_tensor

    backend = resolve_backend(spec.get("backend"))
    t1 = time.perf_counter()
    folder = Path(spec["model_set"])
    entry = load_manifest(folder, check_files=False).entry(spec["model"], spec["format"])
    classifier = TFLiteClassifier.open(folder, entry, backend, spec["threads"])
    t2 = time.perf_counter()
    if spec.get("image"):
        tensor = to_tensor(read_image(Path(spec["image"])), entry.preprocessing)
    else:
        shape = (entry.preprocessing.height, entry.preprocessing.width, 3)
        tensor = to_tensor(np.full(shape, 128, np.uint8), entry.preprocessing)
    t3 = time.perf_counter()
    p = classifier.predict_one(tensor)
    startup = _startup_figures((t0, t1, t2, t3, time.perf_counter()), p)
    from hemiface.benchmarks.macs import macs_from_tflite
    from hemiface.runtime.delegation import delegation_report

    delegation = delegation_report(classifier.interpreter)
    samples = time_runs(
        lambda: classifier.predict_one(tensor),
        spec["warmup"],
        spec["n"],
        spec["min_time_s"],
        spec["max_time_s"],
    )
    return {
        "backend": backend.label,
        **startup,
        "macs": macs_from_tflite(classifier.interpreter),
        "delegate_partitions": delegation.partitions if delegation else None,
        "undelegated_ops": delegation.undelegated_ops if delegation else None,
        "samples_ms": samples,
    }


def run_keras(spec: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    from hemiface.kerasio import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    from hemiface.kerasio import (
        import_keras,
        import_tf_keras,
        keras_module_for,
        load_keras_model,
    )

    # Settable once a process, before TensorFlow starts (a shared process keeps them).
    if tf.config.threading.get_intra_op_parallelism_threads() != spec["threads"]:
        tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])
        tf.config.threading.set_inter_op_parallelism_threads(spec["threads"])
    path = Path(spec["keras_path"])
    # The Keras that will read the file is imported before the clock for loading starts.
    import_keras()
    if path.is_file() and _saved_by_keras2(path):
        import_tf_keras(path)
    t1 = time.perf_counter()
    loaded = load_keras_model(
        path, unsafe=bool(spec.get("unsafe")), custom_objects=spec.get("custom_objects")
    )
    model = loaded.model
    keras = keras_module_for(model)  # the notebook's own Keras: its load_img, its predict
    t2 = time.perf_counter()
    height, width = loaded.input_shape[:2]
    scale, offset = spec.get("scale", 1.0 / 255.0), spec.get("offset", 0.0)
    if spec.get("image"):
        # The notebook's preprocessing: PIL nearest resize, then / 255.
        image = keras.utils.load_img(spec["image"], target_size=(height, width))
        tensor = keras.utils.img_to_array(image)[np.newaxis] * scale + offset
    else:
        tensor = np.full((1, height, width, 3), 128.0 * scale + offset, np.float32)
    tensor = tensor.astype(np.float32)
    t3 = time.perf_counter()
    if spec["engine"] == "keras_predict":

        def run() -> Any:
            return model.predict(tensor, verbose=0)
    else:

        def run() -> Any:
            return model(tensor, training=False)

    p = float(np.asarray(run()).reshape(-1)[0])
    startup = _startup_figures((t0, t1, t2, t3, time.perf_counter()), p)
    from hemiface.benchmarks.macs import macs_from_keras

    samples = time_runs(run, spec["warmup"], spec["n"], spec["min_time_s"], spec["max_time_s"])
    return {
        "backend": f"tensorflow {tf.__version__} / {keras.__name__} {keras.__version__}"
        + (" (SavedModel)" if loaded.loader == "saved_model" else ""),
        **startup,
        "macs": macs_from_keras(model),
        "samples_ms": samples,
    }


def _saved_by_keras2(path: Path) -> bool:
    from hemiface.kerasio import detect_format
    from hemiface.kerasio.files import read_facts

    return read_facts(path, detect_format(path)).is_keras2


def run_matmul(spec: dict[str, Any]) -> dict[str, Any]:
    """Float32 GEMM throughput with numpy's BLAS (threads set by the parent's env)."""
    size = int(spec.get("size", MATMUL_SIZE))
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    samples = time_runs(lambda: a @ b, 2, spec["n"], spec["min_time_s"], spec["max_time_s"])
    return {"macs": size**3, "samples_ms": samples, "first_prediction_at": time.time()}


def run_set(spec: dict[str, Any]) -> dict[str, Any]:
    from hemiface.benchmarks.set_latency import run_set_worker

    return run_set_worker(spec)


def run_pipeline(spec: dict[str, Any]) -> dict[str, Any]:
    from hemiface.benchmarks.pipeline_fps import run_pipeline_worker

    return run_pipeline_worker(spec)


ENGINES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "tflite": run_tflite,
    "pipeline": run_pipeline,
    "keras_predict": run_keras,
    "keras_call": run_keras,
    "machine": run_matmul,
    "set": run_set,
}


def run_batch(spec: dict[str, Any]) -> dict[str, Any]:
    """Several rows one after the other in this one process; a row that fails is data."""
    results = []
    for item in spec["specs"]:
        try:
            results.append({"ok": True, **ENGINES[item["engine"]](item)})
        except Exception as exc:  # noqa: BLE001 - a failed row is data, reported by the parent
            results.append({"ok": False, "error": f"{type(exc).__name__}: {one_line(exc)}"})
    return {"results": results}


ENGINES["batch"] = run_batch


def run_spec(spec: dict[str, Any]) -> dict[str, Any]:
    result = ENGINES[spec["engine"]](spec)
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(json.dumps({"ok": False, "error": "usage: worker '<json spec>'"}))
        return 2
    try:
        spec = json.loads(argv[0])
        result = {"ok": True, **run_spec(spec)}
    except Exception as exc:  # noqa: BLE001 - a failed row is data, reported by the parent
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {one_line(exc)}"}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
