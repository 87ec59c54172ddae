"""The demo's "does quantisation change where the models look?" stage, on tiny artifacts."""

from __future__ import annotations

import shutil
from pathlib import Path

from hemiface.demo.context import DemoContext
from hemiface.demo.drift_stage import DriftOutput, stage_drift
from hemiface.demo.index import write_index
from hemiface.demo.results import load
from hemiface.demo.runner import StageResult


def test_drift_stage_explains_every_format_and_writes_its_section(
    fused_set, tmp_path: Path
) -> None:  # noqa: ANN001
    from hemiface.synth.dataset import generate_dataset

    ctx = DemoContext(tmp_path / "demo", quick=True, progress=lambda *_: None)
    generate_dataset(ctx.data, count=40, seed=3, size=64)
    shutil.copytree(fused_set[1], ctx.modelset)
    output = stage_drift(ctx)
    assert set(output.images) == {"Left", "Right"}
    for item in output.images.values():
        assert Path(item.figure).is_file() and Path(item.json).is_file()
    assert output.faces >= 4 and Path(output.table).is_file()
    assert {(r["model"], r["format"]) for r in output.rows} >= {
        ("CNN", "int8"),
        ("Base", "float32"),
    }
    again = load(DriftOutput, output.to_json())  # the cache's round trip
    assert again == output
    md, _ = write_index(ctx.out, {"drift": StageResult("drift", "ok", 1.0, outputs=output)}, True)
    text = md.read_text()
    assert "6. Does quantisation change where the models look?" in text
    assert "| CNN | int8 |" in text
