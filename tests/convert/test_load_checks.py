"""Load checks travel as LoadCheck: written and read through it, never by slicing text."""

from __future__ import annotations

import pytest

from hemiface.convert.pipeline import _apply_target
from hemiface.convert.render import short_loads
from hemiface.convert.summary import ConversionRow
from hemiface.runtime.manifest import LoadCheck


def _row(loads_in: dict[str, str]) -> ConversionRow:
    return ConversionRow(
        name="cnn_stroke_model", title="CNN", format="dynamic", file="cnn.dynamic.tflite",
        sha256="0" * 64, size_bytes=10, source_bytes=20, seconds=0.0, reused=False,
        min_runtime="tflite-runtime 2.17", loads_in=loads_in, verification=None, passed=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    "check", [LoadCheck(), LoadCheck("Didn't find op for builtin opcode 'FULLY_CONNECTED'")]
)
def test_load_check_round_trips_through_the_manifest_text(check: LoadCheck) -> None:
    assert LoadCheck.from_manifest(check.to_manifest()) == check
    assert check.ok == (check.to_manifest() == "ok")


def test_target_failure_names_the_runtime_and_the_whole_error() -> None:
    error = "error: in the middle"  # a message that itself holds the word "error: "
    row = _row(
        {
            "ai-edge-litert 2.1.0": LoadCheck().to_manifest(),
            "tflite-runtime 2.14.0": LoadCheck(error).to_manifest(),
        }
    )
    _apply_target([row], "tflite-runtime-2.14")
    assert not row.passed
    assert row.problems == [f"tflite-runtime 2.14.0 could not load it: {error}"]
    assert short_loads(row.loads_in) == "litert 2.1.0 ok, [red]tfl-rt 2.14.0 NO[/]"
    ok = _row({"tflite-runtime 2.14.0": "ok"})
    _apply_target([ok], "tflite-runtime-2.14")
    assert ok.passed and ok.problems == []
