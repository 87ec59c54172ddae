"""Measure what `hemiface serve` costs the live loop (figures for the README and issue 23).

    python tools/serve_measure.py MODEL_SET VIDEO [--rounds 9] [--frames 150]
        [--viewer chromium|reader] [--stream-fps 15]

In one process, with one viewer connected throughout (Debian's headless Chromium on the
page, or a plain reader of the MJPEG stream), it runs the loop on VIDEO in turns: headless,
then served (the hub tapping the source), `--rounds` times each, and prints the median FPS
of each and their ratio, and how long the first frame took to show in the viewer after the
page was opened. Interleaved turns keep a busy moment of a shared machine from deciding.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support import Chromium  # noqa: E402

from hemiface.runtime.detectors import open_detector  # noqa: E402
from hemiface.runtime.modelset import load_model_set  # noqa: E402
from hemiface.runtime.pipeline import StreamSettings, run_stream  # noqa: E402
from hemiface.runtime.serve.access import AccessPolicy  # noqa: E402
from hemiface.runtime.serve.hub import LiveHub, StreamLimits  # noqa: E402
from hemiface.runtime.serve.server import ViewServer  # noqa: E402
from hemiface.runtime.sources import VideoFileSource  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_set", type=Path)
    parser.add_argument("video", type=Path)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--viewer", choices=("chromium", "reader"), default="chromium")
    parser.add_argument("--stream-fps", type=float, default=15.0)
    args = parser.parse_args()
    model_set = load_model_set(args.model_set)
    detector = open_detector(args.model_set, None, None, stream=True)
    hub = LiveHub(StreamLimits(max_fps=args.stream_fps))
    hub.thresholds = [e.threshold for e in model_set.entries]
    server = ViewServer(("127.0.0.1", 0), hub, AccessPolicy("127.0.0.1"))
    server.start()
    hub.start()
    url = f"http://127.0.0.1:{server.port}/"

    def loop(frames: int, served: bool) -> float:
        source = VideoFileSource(args.video)
        settings = StreamSettings(crop="face", max_frames=frames)
        if not served:
            return run_stream(source, model_set, settings, detector=detector).fps
        tapped = hub.tap(source)
        return run_stream(
            tapped, model_set, settings, detector=detector, on_result=hub.on_result
        ).fps

    opened_up = threading.Event()

    def feed() -> None:  # new frames while the page opens, as a camera would give
        while not opened_up.is_set():
            loop(30, served=True)

    feeder = threading.Thread(target=feed)
    feeder.start()
    browser = None
    opened = time.monotonic()
    if args.viewer == "chromium":
        browser = Chromium("/usr/bin/chromium", Path(tempfile.mkdtemp()))
        browser.page("Page.enable")
        opened = time.monotonic()
        browser.page("Page.navigate", url=url)
        while not browser.evaluate("document.getElementById('view').naturalWidth"):
            time.sleep(0.02)
    else:

        def read_all() -> None:
            with urllib.request.urlopen(url + "stream.mjpg") as stream:
                while stream.read(65536):
                    pass

        threading.Thread(target=read_all, daemon=True).start()
        while hub.parts_sent == 0:
            time.sleep(0.02)
    first_frame = time.monotonic() - opened
    opened_up.set()
    feeder.join()
    fps: dict[str, list[float]] = {"headless": [], "served": []}
    for _ in range(args.rounds):
        fps["headless"].append(loop(args.frames, served=False))
        fps["served"].append(loop(args.frames, served=True))
    if browser is not None:
        browser.close()
    hub.close()
    server.stop()
    model_set.close()
    medians = {k: statistics.median(v) for k, v in fps.items()}
    print(f"viewer {args.viewer}, stream {args.stream_fps:g} FPS, format {model_set.format}")
    print(f"first frame in the viewer {first_frame:.2f} s after the page was opened")
    for mode, values in fps.items():
        print(f"{mode}: median {medians[mode]:.1f} FPS ({[round(v, 1) for v in values]})")
    print(f"served / headless: {medians['served'] / medians['headless']:.3f}")


if __name__ == "__main__":
    main()
