from __future__ import annotations

from pathlib import Path

import pytest

from hemiface.core import domain
from hemiface.core.errors import HemifaceError, one_line, shorten
from hemiface.core.folders import image_files, label_of, read_labelled_folder


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_reads_left_and_right_sorted_with_labels(tmp_path: Path) -> None:
    right = _touch(tmp_path / "Right" / "b.png")
    left_a = _touch(tmp_path / "Left" / "a.jpg")
    left_nested = _touch(tmp_path / "Left" / "session" / "c.PNG")
    _touch(tmp_path / "Left" / "notes.txt")
    _touch(tmp_path / "loose.png")
    found = read_labelled_folder(tmp_path)
    assert [f.path for f in found] == [left_a, left_nested, right]
    assert [f.label for f in found] == ["Left", "Left", "Right"]
    assert [f.index for f in found] == [0, 0, 1]


def test_label_folders_match_case_insensitively_at_any_depth(tmp_path: Path) -> None:
    _touch(tmp_path / "test" / "left" / "a.png")
    _touch(tmp_path / "test" / "RIGHT" / "b.png")
    found = read_labelled_folder(tmp_path, labels=("Left", "Right"))
    # Sorted by path: "RIGHT" sorts before "left".
    assert [(f.path.name, f.label) for f in found] == [("b.png", "Right"), ("a.png", "Left")]


def test_nearest_label_folder_wins(tmp_path: Path) -> None:
    path = _touch(tmp_path / "Left" / "Right" / "a.png")
    assert label_of(path, tmp_path) == 1


def test_unlabelled_files_kept_on_request(tmp_path: Path) -> None:
    _touch(tmp_path / "Left" / "a.png")
    _touch(tmp_path / "other" / "b.png")
    assert len(read_labelled_folder(tmp_path)) == 1
    found = read_labelled_folder(tmp_path, keep_unlabelled=True)
    assert [(f.path.name, f.index, f.label) for f in found] == [
        ("a.png", 0, "Left"),
        ("b.png", None, None),
    ]


def test_other_labels(tmp_path: Path) -> None:
    _touch(tmp_path / "stroke" / "a.png")
    _touch(tmp_path / "healthy" / "b.png")
    found = read_labelled_folder(tmp_path, labels=["Healthy", "Stroke"])
    assert [(f.path.name, f.index, f.label) for f in found] == [
        ("b.png", 0, "Healthy"),
        ("a.png", 1, "Stroke"),
    ]


def test_missing_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(HemifaceError, match="no such folder") as info:
        read_labelled_folder(tmp_path / "absent")
    assert str(tmp_path / "absent") in str(info.value)


def test_image_files_by_suffix(tmp_path: Path) -> None:
    _touch(tmp_path / "b.webp")
    _touch(tmp_path / "a.tiff")
    _touch(tmp_path / "c.gif")  # every format the runtime reads, GIF too
    _touch(tmp_path / "d.txt")
    assert [p.name for p in image_files(tmp_path)] == ["a.tiff", "b.webp", "c.gif"]


def test_one_line_collapses_and_cuts() -> None:
    assert one_line(ValueError("a\n  b\tc")) == "a b c"
    assert one_line(KeyboardInterrupt()) == "KeyboardInterrupt"
    cut = one_line(RuntimeError("x" * 50), limit=10)
    assert cut == "xxxxxxx..." and len(cut) == 10
    assert shorten("  a  b ") == "a b"


def test_runtime_error_type_is_the_core_one() -> None:
    from hemiface.runtime.errors import HemifaceError as RuntimeHemifaceError

    assert RuntimeHemifaceError is HemifaceError


def test_domain() -> None:
    assert domain.LABELS == ("Left", "Right")
    assert set(domain.MODEL_TITLES) == set(domain.MODEL_NAMES) == set(domain.MODEL_FILES)
    assert domain.model_title("cnn_stroke_model") == "CNN"
    assert domain.model_title("mine") == "mine"
    assert "not a medical device" in domain.NOTICE


def test_core_imports_no_heavy_module() -> None:
    import subprocess
    import sys

    code = (
        "import sys, hemiface.core.domain, hemiface.core.metrics, hemiface.core.folders, "
        "hemiface.core.errors, hemiface.core.quiet\n"
        "print([m for m in ('tensorflow', 'keras', 'cv2', 'hemiface.runtime') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
