"""results.json as typed records: the shipped results read back and write out unchanged,
and a row that drifts from its record is named."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from hemiface.benchmarks.detector_records import DetectorsSection
from hemiface.benchmarks.headline import headline
from hemiface.benchmarks.record import RowFormatError
from hemiface.benchmarks.report import render_report
from hemiface.benchmarks.sections import (
    BenchResults,
    DelegationRow,
    LatencyRow,
    PipelineRow,
    validate,
)

SHIPPED = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "results.json"


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    return json.loads(SHIPPED.read_text())


def test_shipped_results_round_trip_exactly(shipped: dict[str, Any]) -> None:
    results = BenchResults.from_json(copy.deepcopy(shipped))
    assert isinstance(results.latency.rows[0], LatencyRow)
    again = results.to_json()
    assert json.dumps(again) == json.dumps(shipped)  # same keys, same order, same values
    assert validate(again) == []


def test_headline_from_the_records_matches_the_written_one(shipped: dict[str, Any]) -> None:
    results = BenchResults.from_json(copy.deepcopy(shipped))
    assert headline(results) == shipped["headline"]
    report = render_report(copy.deepcopy(shipped))
    assert report.startswith("# hemiface benchmark")
    assert all(f"- {line}" in report for line in shipped["headline"])


def test_a_row_that_drifts_is_named(shipped: dict[str, Any]) -> None:
    renamed = copy.deepcopy(shipped)
    row = renamed["latency"]["rows"][2]
    row["median"] = row.pop("median_ms")
    with pytest.raises(RowFormatError, match=r"latency\.rows\[2\]: unknown field\(s\) median$"):
        BenchResults.from_json(renamed)
    missing = copy.deepcopy(shipped)
    del missing["pipeline"]["rows"][0]["status"]
    with pytest.raises(RowFormatError, match=r"pipeline\.rows\[0\]: missing field\(s\) status"):
        BenchResults.from_json(missing)


def test_results_of_a_run_before_the_set_sections_read_as_not_measured(
    shipped: dict[str, Any],
) -> None:
    older = {k: v for k, v in copy.deepcopy(shipped).items() if k not in ("set", "delegation")}
    results = BenchResults.from_json(older)
    assert (results.set.status, results.set.reason) == ("skipped", "not measured")
    assert "## The set as a whole" in render_report(older)


def test_failed_rows_keep_their_short_form() -> None:
    pipeline = PipelineRow("int8", "auto", True, "failed", error="worker crashed")
    assert pipeline.to_json() == {"format": "int8", "variant": "auto", "fuse": True,
                                  "status": "failed", "error": "worker crashed"}  # fmt: skip
    delegation = DelegationRow("cnn", "int8", "cnn.int8.tflite", "failed", error="bad file")
    assert list(delegation.to_json()) == ["artifact", "format", "file", "status", "error"]
    ok = DelegationRow("cnn", "int8", "cnn.int8.tflite", "ok", partitions=None)
    assert list(ok.to_json()) == [
        "artifact", "format", "file", "status", "partitions", "undelegated_ops",
        "recorded_partitions",
    ]  # fmt: skip


def test_the_records_refuse_what_the_schema_refused(shipped: dict[str, Any]) -> None:
    """Types, enumerations and unknown fields are checked, each named by its path."""
    cases = [
        (
            ("latency", "rows", 0, "threads"),
            "2",
            "latency.rows[0].threads: expected int, found str",
        ),
        (("latency", "rows", 0, "status"), "fine", "latency.rows[0].status: 'fine' is not one of"),
        (("set", "rows", 0, "toolkit", "median_ms"), None, "set.rows[0].toolkit.median_ms: expe"),
        (("agreement", "quality", 0, "roc_auc"), True, "agreement.quality[0].roc_auc: expected"),
        (("schema_version",), 2, "schema_version: 2 is not one of [1]"),
        (("pipeline", "status"), "maybe", "pipeline.status: 'maybe' is not one of"),
    ]
    for path, value, message in cases:
        broken = copy.deepcopy(shipped)
        target = broken
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        (problem,) = validate(broken)
        assert problem.startswith(message), problem
    extra = copy.deepcopy(shipped)
    extra["agreement"]["vs_source"][0]["extra"] = 1  # what additionalProperties: false refused
    assert validate(extra) == ["agreement.vs_source[0]: unknown field(s) extra"]
    assert validate(shipped) == []


def test_a_study_section_round_trips_and_is_left_out_when_not_run(shipped: dict[str, Any]) -> None:
    section = {"status": "skipped", "reason": "not chosen", "detectors": []}
    with_study = {**copy.deepcopy(shipped), "detectors": section}
    results = BenchResults.from_json(with_study)
    assert isinstance(results.detectors, DetectorsSection)
    assert results.to_json()["detectors"] == section
    assert "detectors" not in BenchResults.from_json(copy.deepcopy(shipped)).to_json()
