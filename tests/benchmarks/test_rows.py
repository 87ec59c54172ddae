"""results.json as typed records: the shipped results read back and write out unchanged,
and a row that drifts from its record is named."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from hemiface.benchmarks.headline import headline
from hemiface.benchmarks.report import render_report
from hemiface.benchmarks.rows import (
    AgreementPair,
    DelegationRow,
    LatencyRow,
    PipelineRow,
    QualityRow,
    RowFormatError,
    SetRow,
)
from hemiface.benchmarks.schema import LATENCY_ROW, PAIR, QUALITY, SET_ROW, validate
from hemiface.benchmarks.sections import BenchResults

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


def test_schema_and_records_name_the_same_fields() -> None:
    pairs = [(LATENCY_ROW, LatencyRow), (SET_ROW, SetRow), (PAIR, AgreementPair),
             (QUALITY, QualityRow)]  # fmt: skip
    for schema, record in pairs:
        fields = {f.name for f in dataclasses.fields(record)}
        assert set(schema["required"]) <= fields, record.__name__
        assert set(schema["properties"]) <= fields, record.__name__
    assert set(LATENCY_ROW["properties"]) == {f.name for f in dataclasses.fields(LatencyRow)}
