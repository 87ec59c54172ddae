from __future__ import annotations

from hemiface.benchmarks.face_detection import detection_by_skin_tone, skin_luminance


def test_bands_cover_every_face_in_luminance_order() -> None:
    bands = detection_by_skin_tone(faces=12, seed=1, bands=3)
    assert [b.faces for b in bands] == [4, 4, 4]
    assert all(b.luminance_low <= b.luminance_high for b in bands)
    assert all(a.luminance_high <= b.luminance_low for a, b in zip(bands, bands[1:], strict=False))
    assert all(0 <= b.detected <= b.faces for b in bands)
    assert bands[0].to_json()["rate"] == round(bands[0].detected / 4, 3)


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
