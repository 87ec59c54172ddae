"""The comparison tools/pi-check.sh relies on: a difference must never pass unnoticed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "pi_check.py"


@pytest.fixture(scope="module")
def pi_check():  # -> the tools/pi_check.py module (tools/ is not a package)
    spec = importlib.util.spec_from_file_location("pi_check", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _frame(frame: int, box: list[int] | None, p: float, p_raw: float | None = None) -> dict:
    models = {"cnn": {"p": p, "p_raw": p if p_raw is None else p_raw, "label": "Right"}}
    return {"frame": frame, "face": box, "models": models}


def test_identical_runs_match(pi_check) -> None:
    host = [_frame(i, [10, 20, 30, 30], 0.25 + i / 100) for i in range(3)]
    result = pi_check.compare_runs(host, json.loads(json.dumps(host)))
    assert result["box_differs"] == 0 and result["max_abs_dp"] == 0.0
    assert result["p_values"] == 6 and not result["missing"]


def test_box_shift_probability_and_missing_records_are_caught(pi_check) -> None:
    host = [_frame(0, [10, 20, 30, 30], 0.5), _frame(1, [10, 20, 30, 30], 0.5)]
    host.append(_frame(2, None, 0.5))
    device = [_frame(0, [12, 20, 30, 30], 0.5), _frame(1, [10, 20, 30, 30], 0.5, 0.5000001)]
    result = pi_check.compare_runs(host, device)
    assert result["box_differs"] == 1 and result["max_box_px"] == 2.0
    assert result["max_abs_dp"] == pytest.approx(1e-7) and result["p_differs"] == 1
    assert "2" in result["missing"] and any("record count" in m for m in result["missing"])


def test_report_fails_on_a_required_check_only(pi_check, tmp_path: Path) -> None:
    host, device = tmp_path / "host", tmp_path / "device"
    host.mkdir()
    device.mkdir()
    rows = [_frame(i, [1, 2, 3, 4], 0.3) for i in range(2)]
    for folder in (host, device):
        (folder / "predict-int8-png.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    shifted = [_frame(i, [1, 2, 3, 5], 0.3) for i in range(2)]
    (host / "run-haar-float32-mp4v.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (device / "run-haar-float32-mp4v.jsonl").write_text("\n".join(json.dumps(r) for r in shifted))
    report = tmp_path / "report.md"
    assert pi_check.compare(host, device, report, None, "t") == 0  # lossy video: reported only
    assert "| differs |" in report.read_text() and "| pass |" in report.read_text()
    int8 = [_frame(i, [1, 2, 3, 4], 0.3 + 1 / 256) for i in range(2)]
    (device / "predict-int8-png.jsonl").write_text("\n".join(json.dumps(r) for r in int8))
    assert pi_check.compare(host, device, report, None, "t") == 1  # int8 must be exact
    assert "| FAIL |" in report.read_text()
