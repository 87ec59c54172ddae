"""Op codes and versions read from the flatbuffer, minimum runtimes, --target."""

from __future__ import annotations

import pytest

from hemiface.convert.compat import (
    analyze_ops,
    describe_min_runtime,
    load_in_process,
    target_problem,
    version_tuple,
)
from hemiface.convert.flatbuffer import FlatbufferError, read_metadata, read_operator_codes


def _ops(content: bytes) -> set[tuple[str, int]]:
    return {(op.op, op.version) for op in analyze_ops(content).ops}


def test_operator_codes_match_tensorflows_own_reader(model_set):
    from tensorflow.lite.tools import flatbuffer_utils

    _, out = model_set
    for path in sorted(out.glob("*.tflite")):
        content = path.read_bytes()
        theirs = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
        expected = [
            (max(code.deprecatedBuiltinCode, code.builtinCode), code.version)
            for code in theirs.operatorCodes
        ]
        ours = [(code.builtin_code, code.version) for code in read_operator_codes(content)]
        assert ours == expected, path.name


def test_dynamic_range_model_needs_fully_connected_v12_and_runtime_2_17(model_set):
    _, out = model_set
    content = (out / "tiny.dynamic.tflite").read_bytes()
    assert ("FULLY_CONNECTED", 12) in _ops(content)
    report = analyze_ops(content)
    assert report.min_runtime == "2.17.0"
    assert "FULLY_CONNECTED v12" in report.blocking
    assert "2.17.0" in describe_min_runtime(report)
    problem = target_problem(report, "tflite-runtime-2.14")
    assert problem is not None and "FULLY_CONNECTED v12" in problem
    # The converter's own metadata agrees with our table.
    assert read_metadata(content)["min_runtime_version"].rstrip(b"\0") == b"2.17.0"


def test_float32_and_int8_fit_tflite_runtime_2_14(model_set):
    _, out = model_set
    for fmt in ("float32", "float16", "int8"):
        report = analyze_ops((out / f"tiny.{fmt}.tflite").read_bytes())
        assert version_tuple(report.min_runtime) <= (2, 14, 0), fmt
        assert target_problem(report, "tflite-runtime-2.14") is None
    int8_ops = _ops((out / "tiny.int8.tflite").read_bytes())
    assert ("FULLY_CONNECTED", 4) in int8_ops
    # int8 I/O (the default) needs no QUANTIZE at the edges; uint8 I/O adds version 1 ones.
    assert not any(op == "QUANTIZE" for op, _ in int8_ops)


def test_not_a_tflite_file_is_refused():
    with pytest.raises(FlatbufferError, match="not a TFLite model"):
        read_operator_codes(b"\x00" * 64)


def test_loads_in_the_litert_interpreter_here(model_set):
    _, out = model_set
    results = load_in_process((out / "tiny.int8.tflite").read_bytes())
    assert any(k.startswith("ai-edge-litert") and v == "ok" for k, v in results.items())
    broken = load_in_process(b"\x00" * 64)
    assert all(v.startswith("error:") for v in broken.values())


def test_version_tuple_orders_runtime_versions():
    assert version_tuple("2.17.0") > version_tuple("2.14.0") > version_tuple("1.15.0")
    assert version_tuple("2.4.0") < version_tuple("2.14")


def test_manifest_records_ops(model_set):
    from hemiface.runtime.manifest import load_manifest

    _, out = model_set
    entry = load_manifest(out).entry("tiny", "dynamic")
    assert any(op.op == "FULLY_CONNECTED" and op.version == 12 for op in entry.ops)
    assert entry.min_runtime.startswith("TFLite runtime 2.17.0+")


def test_op_reader_does_not_need_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys; import hemiface.convert.flatbuffer, hemiface.convert.compat; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
