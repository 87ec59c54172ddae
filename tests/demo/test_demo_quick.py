"""The main job end to end: `hemiface demo --quick` from nothing (several minutes)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_quick_succeeds_and_indexes_existing_files(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "hemiface", "demo", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    summary = json.loads((out / "demo.json").read_text())
    statuses = {name: stage["status"] for name, stage in summary.items()}
    assert statuses == dict.fromkeys(
        ["data", "train", "convert", "runtime", "explain", "bench", "drift"], "ok"
    ), done.stdout[-3000:]
    assert done.returncode == 0
    # A clean final screen: the stage lines and the summary, no progress bar left behind
    # (its "done/total h:mm:ss" columns).
    assert not re.search(r"\d+/\d+ +\d+:\d\d:\d\d", done.stdout), done.stdout[-1500:]
    assert "Traceback" not in done.stdout + done.stderr

    index = (out / "index.md").read_text()
    linked = re.findall(r"`([^`]+\.(?:png|json|jsonl|mp4|md))`", index)
    linked += re.findall(r"\]\(([^)]+\.png)\)", index)
    assert len(linked) >= 10
    missing = [p for p in linked if not (out / p).exists()]
    assert not missing, missing
    assert "(missing)" not in index
    html = (out / "index.html").read_text()
    assert html.count("data:image/png;base64,") >= 4  # figures inline

    # The runtime really ran on the video and the recording is a playable file.
    runtime = summary["runtime"]["outputs"]
    assert runtime["frames_with_prediction"] > 0
    import cv2

    capture = cv2.VideoCapture(runtime["recording"])
    assert capture.isOpened() and capture.read()[0]
