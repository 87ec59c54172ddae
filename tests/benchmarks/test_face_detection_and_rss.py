from __future__ import annotations

import numpy as np

from hemiface.benchmarks.face_detection import (
    compare_detectors,
    detection_by_skin_tone,
    face_free_frames,
    skin_luminance,
)
from hemiface.benchmarks.report import detectors_tables


def test_bands_cover_every_face_in_luminance_order() -> None:
    bands = detection_by_skin_tone(faces=12, seed=1, bands=3)
    assert [b.faces for b in bands] == [4, 4, 4]
    assert all(b.luminance_low <= b.luminance_high for b in bands)
    assert all(a.luminance_high <= b.luminance_low for a, b in zip(bands, bands[1:], strict=False))
    assert all(set(b.found) == {"haar", "blazeface"} for b in bands)
    assert all(0 <= n <= b.faces for b in bands for n in b.found.values())
    assert bands[0].to_json()["rate"]["haar"] == round(bands[0].found["haar"] / 4, 3)
    # BlazeFace finds every one of these faces, the darkest band included.
    assert [b.found["blazeface"] for b in bands] == [4, 4, 4]


def test_face_free_frames_are_scenes_without_a_face() -> None:
    frames = list(face_free_frames(3, seed=5))
    assert all(f.shape == (480, 640, 3) and f.dtype == np.uint8 for f in frames)
    assert all(f.std() > 10 for f in frames)  # clutter and light, not a flat frame
    assert np.array_equal(frames[0], next(face_free_frames(1, seed=5)))


def test_comparison_report_has_both_detectors_side_by_side() -> None:
    section = compare_detectors(faces=8, face_free=4)
    result = section.to_json()
    assert result["detectors"] == ["haar", "blazeface"]
    assert result["false_detections"].keys() == {"haar", "blazeface"}
    assert all(t["calls"] == 12 and t["median_ms"] > 0 for t in result["timing"].values())
    assert result["time_ratio_blazeface_to_haar"] > 0
    assert result["demo_video"]["frames"] == 90
    assert result["demo_video"]["found"]["blazeface"] == 90
    assert result["astronaut"]["blazeface"]["found"]
    text = "\n".join(detectors_tables(section, {"cpu_flags": ["avx2"]}))
    assert "| skin luminance (0-255) | faces | haar | blazeface |" in text
    assert "BlazeFace / Haar" in text and "False detections on 4" in text


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
