"""`hemiface serve` in a real browser: Debian's headless Chromium opens the page served
from a demo-like video, with a token, and sees the picture change and the numbers update.
A screenshot is kept under the test's tmp folder (its path is printed)."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from support import Chromium

CHROMIUM = shutil.which("chromium")
STATE = """[document.getElementById('view').naturalWidth,
 document.getElementById('frame').textContent,
 document.getElementById('video-state').dataset.changes,
 document.getElementById('ensemble-p').textContent,
 document.getElementById('models').rows.length,
 document.getElementById('link-state').textContent]"""


def demo_video(path: Path, helpers, astronaut) -> Path:
    """Ten seconds of the face lit from one side then the other, a bar moving along."""
    frames = []
    for i in range(150):
        image = helpers.face_frame(astronaut, "right" if (i // 30) % 2 else "left")
        image[20:30, (i * 4) % 600 : (i * 4) % 600 + 40] = 255
        frames.append(image)
    return helpers.write_video(path, frames, fps=15.0)


def start_serve(*args: object) -> tuple[subprocess.Popen[str], str, list[str]]:
    """Start `hemiface serve`; its URL from the first line on stderr, and its stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "hemiface", "serve", *map(str, args)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if line.startswith("serving "):
                found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(timeout=120):
        process.kill()
        pytest.fail(f"serve did not start: {''.join(lines)}")
    url = re.search(r"http://\S+?(?=;|\s|$)", lines[-1] if lines else "")
    assert url is not None, lines
    return process, url.group(0), lines


@pytest.mark.slow
def test_the_page_shows_a_moving_picture_and_live_numbers(
    model_set_dir: Path, tmp_path: Path, helpers, astronaut
) -> None:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    video = demo_video(tmp_path / "demo.mp4", helpers, astronaut)
    process, url, lines = start_serve(
        "--models", model_set_dir, "--video", video, "--repeat", "--port", 0, "--token",
        "--concurrency", "sequential", "--record-dir", tmp_path,
    )  # fmt: skip
    assert "?token=" in url
    browser = Chromium(CHROMIUM, tmp_path / "profile", size=(1400, 950))
    try:
        browser.page("Page.enable")
        opened = time.monotonic()
        browser.page("Page.navigate", url=url)
        first_frame = None
        seen = []
        deadline = opened + 60
        while time.monotonic() < deadline:
            state = browser.evaluate(STATE)
            if state and state[0] and first_frame is None:
                first_frame = time.monotonic() - opened
            seen.append(state)
            if state and int(state[2]) >= 3 and len({s[1] for s in seen if s}) >= 4:
                break
            time.sleep(0.2)
        first_shot = browser.screenshot(tmp_path / "serve-page-1.png")
        time.sleep(1.0)
        final = browser.evaluate(STATE)
        shot = browser.screenshot(tmp_path / "serve-page.png")
        record_disabled = browser.evaluate("document.getElementById('rec-start').disabled")
        # Record from the page (its POSTs carry the token), then stop: a whole file appears.
        browser.evaluate("document.getElementById('rec-start').click()")
        time.sleep(1.5)
        browser.evaluate("document.getElementById('rec-stop').click()")
        deadline = time.monotonic() + 30
        while not list(tmp_path.glob("hemiface-*.mp4")) and time.monotonic() < deadline:
            time.sleep(0.2)
        saved_text = browser.evaluate("document.getElementById('rec-state').textContent")
    finally:
        browser.close()
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    print(f"\nscreenshot: {shot}\nfirst frame in the browser {first_frame:.2f} s after navigate")
    width, frame_text, changes, ensemble, rows, link = final
    assert width == 640, final  # the stream is showing
    assert int(changes) >= 3, seen  # and the picture moves
    assert rows == 3 and link == "live", final  # a row per model, the events flowing
    assert re.fullmatch(r"0\.\d{3}|1\.000", ensemble), final
    frames = [int(s[1]) for s in seen if s and s[1].isdigit()]
    assert len(set(frames)) >= 4 and frames == sorted(frames), frames  # numbers update
    assert record_disabled is False  # recording is offered: the folder was given
    recordings = list(tmp_path.glob("hemiface-*.mp4"))
    assert len(recordings) == 1, recordings
    assert saved_text.endswith(f"saved {recordings[0].name}"), saved_text
    assert not list(tmp_path.glob(".*.partial.mp4"))
    before, after = (cv2.imread(str(p)) for p in (first_shot, shot))
    assert before.shape == after.shape and np.any(before != after)
    assert process.returncode == 130, "".join(lines)
