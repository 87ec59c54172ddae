"""The README's recorded figures are what tools/readme_figures.py renders from the
committed results files: a hand edit inside a marked block is caught here."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def figures() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "readme_figures", ROOT / "tools" / "readme_figures.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_figures"] = module
    spec.loader.exec_module(module)
    return module


def test_the_readme_blocks_match_the_committed_results(figures: ModuleType) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    recorded = figures.load_recorded(ROOT / "benchmarks" / "results")
    names = [m.group(2) for m in figures.BLOCK.finditer(readme)]
    assert sorted(names) == sorted(figures.FIGURES), "every figure has its one block"
    assert figures.rewrite(readme, recorded) == readme
    assert recorded.bench.created_utc[:10] in readme  # the run's date stands beside its figures


def test_rewriting_is_idempotent_and_undoes_a_hand_edit(
    figures: ModuleType, tmp_path: Path
) -> None:
    readme = tmp_path / "README.md"
    original = (ROOT / "README.md").read_text(encoding="utf-8")
    edited = original.replace(
        "<!-- figures:set-fused-int8 -->0.37x", "<!-- figures:set-fused-int8 -->0.31x"
    )
    assert edited != original
    readme.write_text(edited, encoding="utf-8")
    results = ROOT / "benchmarks" / "results"
    args = ["--readme", str(readme), "--results", str(results)]
    assert figures.main([*args, "--check"]) == 1
    assert readme.read_text(encoding="utf-8") == edited  # --check changes nothing
    assert figures.main(args) == 0
    assert readme.read_text(encoding="utf-8") == original
    assert figures.main([*args, "--check"]) == 0
    assert figures.main(args) == 0 and readme.read_text(encoding="utf-8") == original


def test_an_unknown_block_or_a_missing_results_file_is_one_line(
    figures: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("a <!-- figures:nonsense -->1<!-- /figures:nonsense --> b\n")
    results = ROOT / "benchmarks" / "results"
    assert figures.main(["--readme", str(readme), "--results", str(results)]) == 2
    assert re.search(r"figures:nonsense: no such figure", capsys.readouterr().err)
    empty = tmp_path / "results"
    empty.mkdir()
    shutil.copy(results / "results.json", empty)  # the studies' files are missing
    assert figures.main(["--readme", str(readme), "--results", str(empty)]) == 2
    error = capsys.readouterr().err
    assert "face_detection.json" in error and error.count("\n") == 1


def test_the_detector_figures_have_both_axes(figures: ModuleType) -> None:
    recorded = figures.load_recorded(ROOT / "benchmarks" / "results")
    by_size = figures.FIGURES["detectors-by-size"](recorded)
    assert "| face-box height (px) | Haar cascade | BlazeFace short range alone | BlazeFace |" in (
        by_size
    )
    assert [line.split("|")[1].strip() for line in by_size.splitlines()[3:-1]] == [
        "80-120",
        "120-180",
        "180-260",
        "260-340",
    ]
    by_tone = figures.FIGURES["detectors-by-skin-tone"](recorded)
    assert by_tone.count("\n  | ") == 2 + 4  # header, rule and the four quartiles
