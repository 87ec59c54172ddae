"""The face benchmark: its frames (a face of known place and size in a synthetic scene),
what counts as found, its records and its tables, on the packaged BlazeFace models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hemiface.benchmarks.detector_records import DetectorsSection
from hemiface.benchmarks.detector_report import detectors_tables
from hemiface.benchmarks.face_detection import (
    available_detectors,
    compare_detectors,
    detection_by_size_and_tone,
)
from hemiface.benchmarks.face_frames import (
    FRAME,
    SIZE_BANDS,
    centre_inside,
    face_free_frames,
    face_free_scene,
    place_face,
    sized_face_frames,
    skin_luminance,
    skin_quartiles,
)
from hemiface.benchmarks.sections import BenchResults
from hemiface.runtime.face import FaceBox


def test_every_face_lies_in_its_frame_at_a_height_inside_its_band() -> None:
    placed = list(sized_face_frames(12, seed=7))
    assert [p.size_band for p in placed] == [0, 1, 2, 3] * 3  # the bands in turn
    width, height = FRAME
    for p in placed:
        x, y, w, h = p.box
        low, high = SIZE_BANDS[p.size_band]
        assert low <= h <= high, (p.size_band, h)
        assert 0 <= x and x + w <= width and 0 <= y and y + h <= height
        assert p.frame.shape == (height, width, 3) and p.frame.dtype == np.uint8
    assert len({round(p.box[3]) for p in placed}) == 12  # heights drawn, not fixed


def test_the_true_box_is_where_the_face_was_pasted() -> None:
    for band, limits in enumerate(SIZE_BANDS):
        background = face_free_scene(np.random.default_rng(band))  # the frame before the face
        p = place_face(np.random.default_rng(band), limits, band)
        changed = np.argwhere((p.frame != background).any(axis=2))
        (top, left), (bottom, right) = changed.min(axis=0), changed.max(axis=0)
        x, y, w, h = p.box
        assert left <= x and x + w <= right + 1 and top <= y and y + h <= bottom + 1
        assert w * h > 0.2 * (right - left) * (bottom - top)  # the face, not its surroundings


def test_a_real_detector_lands_inside_the_true_box_of_large_faces() -> None:
    short = available_detectors()["blazeface-short"]
    large = [p for p in sized_face_frames(8, seed=3) if p.size_band == 3]
    assert all(centre_inside(short.detect(p.frame), p.box) for p in large)


def test_skin_quartiles_are_equal_count_and_ordered() -> None:
    lumas = list(np.random.default_rng(2).uniform(30, 240, 13))
    bands = skin_quartiles(lumas)
    assert sorted(bands.count(b) for b in range(4)) == [3, 3, 3, 4]
    for band in range(3):
        darker = max(v for v, b in zip(lumas, bands, strict=True) if b == band)
        lighter = min(v for v, b in zip(lumas, bands, strict=True) if b == band + 1)
        assert darker < lighter


def test_found_means_the_centre_inside_the_true_box() -> None:
    box = (100.0, 50.0, 80.0, 100.0)
    assert centre_inside(FaceBox(110, 60, 60, 60), box)
    assert not centre_inside(FaceBox(300, 60, 60, 60), box)  # a face elsewhere
    assert not centre_inside(FaceBox(60, 10, 60, 60), box)  # overlapping, centre outside
    assert not centre_inside(None, box)


class _Oracle:
    """Knows each benchmark frame's true box; answers it shifted by `shift` box widths."""

    def __init__(self, name: str, faces: int, seed: int, shift: float) -> None:
        self.name = name
        self.boxes = {p.frame.tobytes(): p.box for p in sized_face_frames(faces, seed)}
        self.shift = shift

    def detect(self, rgb: np.ndarray, near: FaceBox | None = None) -> FaceBox | None:
        x, y, w, h = self.boxes[rgb.tobytes()]
        return FaceBox(round(x + self.shift * w), round(y), round(w), round(h))


def test_a_detection_elsewhere_in_the_frame_is_a_miss() -> None:
    detectors = {
        "oracle": _Oracle("oracle", 8, 5, shift=0.0),
        "beside": _Oracle("beside", 8, 5, shift=1.1),  # a face-sized box next to the face
    }
    finds = detection_by_size_and_tone(8, seed=5, detectors=detectors)  # type: ignore[arg-type]
    assert finds.found == {"oracle": 8, "beside": 0}
    assert [b.faces for b in finds.size_bands] == [2, 2, 2, 2]
    assert [b.faces for b in finds.skin_tone_bands] == [2, 2, 2, 2]
    assert sum(c.faces for c in finds.cells) == 8
    assert all(c.found["oracle"] == c.faces and c.rate["beside"] == 0 for c in finds.cells)
    lows = [b.luminance_low for b in finds.skin_tone_bands]
    assert lows == sorted(lows)


def test_face_free_frames_are_scenes_without_a_face() -> None:
    frames = list(face_free_frames(3, seed=5))
    assert all(f.shape == (480, 640, 3) and f.dtype == np.uint8 for f in frames)
    assert all(f.std() > 10 for f in frames)  # clutter and light, not a flat frame
    assert np.array_equal(frames[0], next(face_free_frames(1, seed=5)))


@pytest.fixture(scope="module")
def section() -> DetectorsSection:
    return compare_detectors(faces=8, face_free=4, seed=9)


def test_the_section_compares_every_detector_on_the_same_frames(section: DetectorsSection) -> None:
    result = section.to_json()
    names = ["haar", "blazeface-short", "blazeface-full", "blazeface"]
    assert result["detectors"] == names
    assert result["finds"]["seed"] == 9 and result["face_free_seed"] == 10
    assert result["false_detections"].keys() == set(names)
    assert all(t["calls"] == 8 and t["median_ms"] > 0 for t in result["timing"].values())
    assert all(t["calls"] == 4 for t in result["face_free_timing"].values())
    assert result["time_ratio_blazeface_to_haar"] > 0
    search = result["search"]
    assert sum(search["face_steps"].values()) == 8 and sum(search["face_free_steps"].values()) == 4
    assert search["frames"] == 12
    ran = search["face_steps"]["tiles"] + search["face_steps"]["none"]
    assert (
        search["tiles_ran"]
        == ran + search["face_free_steps"]["tiles"] + (search["face_free_steps"]["none"])
    )
    assert search["short_ms"]["calls"] == search["face_steps"]["short"]
    assert result["demo_video"]["frames"] == 90
    assert result["demo_video"]["found"]["blazeface"] == 90
    assert result["astronaut"]["blazeface"]["found"]


def test_the_section_reads_back_through_the_strict_reader(section: DetectorsSection) -> None:
    text = json.dumps(section.to_json())
    assert DetectorsSection.from_json(json.loads(text)) == section
    broken = json.loads(text)
    broken["finds"]["size_bands"][0]["height"] = 3
    with pytest.raises(ValueError, match=r"finds.size_bands\[0\]: unknown field"):
        DetectorsSection.from_json(broken)
    assert "detectors" in BenchResults.__dataclass_fields__


def test_the_report_has_both_axes_and_the_search_steps(section: DetectorsSection) -> None:
    text = "\n".join(detectors_tables(section, {"cpu_flags": ["avx2"]}))
    header = (
        "| face-box height (px) | faces | haar | blazeface-short | blazeface-full | blazeface |"
    )
    assert header in text
    assert "| skin luminance (0-255) | faces | haar |" in text
    assert "| face-box height (px) | skin luminance | faces |" in text
    assert "| 80-120 | 2 |" in text
    assert "The tiles step ran on" in text and "False detections on 4" in text


def test_the_bench_section_takes_a_seed_and_times_the_live_loop(
    bench_assets: dict[str, Path], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from hemiface.cli import app

    out = tmp_path / "out"
    args = ["bench", "--tflite", str(bench_assets["tflite"]), "--out", str(out), "--quick"]
    result = CliRunner().invoke(app, [*args, "--only", "detectors", "--detector-seed", "31"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    data = json.loads((out / "results.json").read_text())
    section = BenchResults.from_json(data).detectors
    assert section is not None and section.finds is not None and section.live_loop is not None
    assert section.finds.seed == 31 and section.face_free_seed == 32
    assert section.finds.faces == 40 and [b.faces for b in section.finds.size_bands] == [10] * 4
    assert list(section.live_loop.detectors) == ["haar", "blazeface-short", "blazeface"]
    assert all(d.face_ms > 0 and d.frames == 90 for d in section.live_loop.detectors.values())
    report = (out / "report.md").read_text()
    assert "Face stage of the default search against the short-range model alone" in report


def test_luminance_of_black_and_white() -> None:
    assert skin_luminance((0, 0, 0)) == 0
    assert round(skin_luminance((255, 255, 255))) == 255


def test_worker_peak_rss_is_its_own_not_the_parents() -> None:
    """Linux keeps ru_maxrss across exec; the worker must not report its parent's peak."""
    import subprocess
    import sys

    import numpy as np

    ballast = np.ones((300, 1024, 1024), np.uint8)  # 300 MB resident in this process
    code = "from hemiface.benchmarks.worker import _peak_rss_mb; print(_peak_rss_mb())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ballast.sum() > 0
    assert float(out.stdout) < 150
