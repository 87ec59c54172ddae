"""`hemiface serve`: the live loop with its view served to a browser.

The loop is `run_stream`, unchanged and headless: the hub taps its source and takes its
results (`on_result`), and draws the overlay on its own threads, only for the frames it
sends, so a viewer costs the loop one slot assignment a frame. The server is bound before the model
set is opened, so a bad address or a busy port is said at once, and it is closed however
the loop ends (end of video, Ctrl-C, SIGTERM, SIGHUP, an error), a running recording
renamed into place first. Imported for `hemiface --help`: numpy and OpenCV load inside.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.options import (
    DEFAULT_MARGIN,
    BackendOption,
    Concurrency,
    Crop,
    DetectorOption,
    FormatOption,
    FuseOption,
    LevelOption,
    MarginOption,
    ModelSetOptions,
    ModelsOption,
    OnlyOption,
    ThreadsOption,
    TrustedKeyOption,
)

if TYPE_CHECKING:
    import numpy as np

    from hemiface.runtime.modelset import ModelSet
    from hemiface.runtime.pipeline import StreamSettings
    from hemiface.runtime.serve.hub import LiveHub
    from hemiface.runtime.sources import FrameSource, VideoFileSource

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


class PacedVideo:
    """A video file shown at its own frame rate, from the start again with `repeat`.

    A viewer watching a file wants it at the speed it was filmed; `--no-pace` runs it as
    fast as the loop can (to measure). The models still see every frame, in order.
    """

    live = False

    def __init__(
        self,
        video: VideoFileSource,
        pace: bool = True,
        repeat: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.video, self.pace, self.repeat, self.sleep = video, pace, repeat, sleep
        self.name = video.name
        self._started = 0.0
        self._shown = 0

    @property
    def fps(self) -> float | None:
        return self.video.fps

    def open(self) -> None:
        self.video.open()
        self._started, self._shown = time.monotonic(), 0

    def read(self) -> np.ndarray | None:
        frame = self.video.read()
        if frame is None and self.repeat:
            self.video.close()
            self.open()
            frame = self.video.read()
        if frame is not None and self.pace and self.video.fps:
            due = self._started + self._shown / self.video.fps
            if due > time.monotonic():
                self.sleep(due - time.monotonic())
            self._shown += 1
        return frame

    def close(self) -> None:
        self.video.close()


def view_url(host: str, port: int, token: str | None) -> str:
    """The address to open: this machine's name when bound to every address."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def page_meta(model_set: ModelSet) -> dict[str, Any]:
    from hemiface.core.domain import NOTICE

    return {
        "models": [
            {"name": e.name, "title": e.title, "threshold": e.threshold} for e in model_set.entries
        ],
        "format": model_set.format,
        "notice": NOTICE,
    }


def serve(
    models: ModelsOption,
    camera: Annotated[
        int | None, typer.Option("--camera", help="OpenCV camera index, e.g. 0.")
    ] = None,
    video: Annotated[
        Path | None, typer.Option("--video", help="A video file: every frame, in order.")
    ] = None,
    picamera: Annotated[
        bool, typer.Option("--picamera", help="The Pi CSI camera via Picamera2.")
    ] = False,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. Default loopback only (reach it with ssh -L); any "
            "other address needs --token or --token-file.",
        ),
    ] = DEFAULT_HOST,
    port: Annotated[int, typer.Option("--port", help="TCP port; 0 picks a free one.")] = (
        DEFAULT_PORT
    ),
    token: Annotated[
        bool, typer.Option("--token", help="Require a random token, printed once as a URL.")
    ] = False,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="Require the token in this file.")
    ] = None,
    record_dir: Annotated[
        Path | None,
        typer.Option("--record-dir", help="Folder for recordings started from the page."),
    ] = None,
    stream_fps: Annotated[
        float, typer.Option("--stream-fps", help="Most JPEGs a second sent to viewers.")
    ] = 15.0,
    max_viewers: Annotated[
        int, typer.Option("--max-viewers", help="Streams at once; the rest get 503.")
    ] = 4,
    pace: Annotated[
        bool, typer.Option("--pace/--no-pace", help="Play --video at its own frame rate.")
    ] = True,
    repeat: Annotated[
        bool, typer.Option("--repeat", help="Play --video again from the start at its end.")
    ] = False,
    max_frames: Annotated[
        int | None, typer.Option("--max-frames", help="Stop after N frames.")
    ] = None,
    every: Annotated[
        int | None,
        typer.Option("--every", help="Detect the face every N frames, track between."),
    ] = None,
    smooth: Annotated[
        float, typer.Option("--smooth", help="EMA weight of the past, 0 (off) to <1.")
    ] = 0.5,
    crop: Annotated[Crop, typer.Option("--crop", help="face, center or none.")] = Crop.face,
    margin: MarginOption = DEFAULT_MARGIN,
    fmt: FormatOption = None,
    only: OnlyOption = None,
    backend: BackendOption = None,
    threads: ThreadsOption = None,
    width: Annotated[int, typer.Option("--width", help="Camera frame width.")] = 640,
    height: Annotated[int, typer.Option("--height", help="Camera frame height.")] = 480,
    detector: DetectorOption = None,
    level: LevelOption = True,
    fuse: FuseOption = True,
    concurrency: Annotated[
        Concurrency, typer.Option("--concurrency", help="As for run.")
    ] = Concurrency.auto,
    trusted_key: TrustedKeyOption = None,
) -> None:
    """The live loop with its view in a browser: stream, live results, recording."""
    from hemiface.runtime.pipeline import StreamSettings
    from hemiface.runtime.serve.access import AccessPolicy
    from hemiface.runtime.serve.hub import LiveHub, StreamLimits
    from hemiface.runtime.serve.recorder import Recorder, check_record_folder
    from hemiface.runtime.serve.server import ViewServer
    from hemiface.runtime.sources import VideoFileSource, choose_source

    policy = AccessPolicy.make(host, token, token_file)  # refused before anything starts
    if not 0 <= port <= 65535:
        raise HemifaceError(f"--port must be 0 to 65535 (got {port})")
    limits = StreamLimits(max_fps=stream_fps, max_viewers=max_viewers)
    folder = check_record_folder(record_dir) if record_dir is not None else None
    source: FrameSource = choose_source(camera, video, picamera, (width, height))
    if isinstance(source, VideoFileSource):
        source = PacedVideo(source, pace, repeat)
    options = ModelSetOptions.from_options(
        models, fmt, only, backend, threads, fuse, detector, margin, level, trusted_key
    )
    options.check_signature()  # before the camera, the video or the server is opened
    settings = StreamSettings(
        crop=crop.value,
        every=every if every is not None else 1,
        smooth=smooth,
        max_frames=max_frames,
        margin=options.margin,
        level=options.level,
    )
    hub = LiveHub(limits)
    recorder = Recorder(hub, folder) if folder is not None else None
    server = ViewServer((host, port), hub, policy, recorder)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        server.start()
        hub.start()
        url = view_url(host, server.port, policy.token)
        how = (
            f"; from another machine: ssh -L {server.port}:{host}:{server.port} USER@THIS-HOST"
            if policy.token is None
            else "; the token in it is needed on every request: share it with no one"
        )
        err.print(f"serving {url}{how}", markup=False)
        _run_served(source, options, settings, every, (width, height), concurrency, hub, err)
    finally:
        if recorder is not None:
            saved = recorder.stop()
            if saved is not None:
                err.print(f"recording saved: {saved}", markup=False)
        hub.close()
        server.stop()


def _run_served(
    source: FrameSource,
    options: ModelSetOptions,
    settings: StreamSettings,
    every: int | None,
    size: tuple[int, int],
    concurrency: Concurrency,
    hub: LiveHub,
    err: Console,
) -> None:
    """Open the set and the detector, choose the live mode, run the loop into the hub."""
    from hemiface.runtime.live import start_live
    from hemiface.runtime.pipeline import run_stream
    from hemiface.runtime.stopping import stop_signals

    with stop_signals() as stop:
        live = start_live(options, settings, every, size, concurrency.value)
        plan, model_set, finder, settings = live.plan, live.model_set, live.detector, live.settings
        try:
            hub.meta = page_meta(model_set)
            hub.thresholds = [e.threshold for e in model_set.entries]
            err.print(
                f"{source.name}: models {', '.join(model_set.titles)}, format "
                f"{model_set.format}, live mode {plan.candidate.label} ({plan.reason})",
                markup=False,
            )
            # Headless: the loop draws nothing; the hub draws what it sends, off the loop.
            stats = run_stream(
                hub.tap(source),
                model_set,
                settings,
                detector=finder,
                on_result=hub.on_result,
                open_lane=live.open_lane,
            )
        finally:
            model_set.close()
    ended = stats.ended
    if ended == "interrupted" and stop.signal is not None:
        ended = f"interrupted by {stop.name}"
    try:
        err.print(
            f"{stats.frames} frames in {stats.seconds:.1f} s ({stats.fps:.1f} FPS), "
            f"{stats.predicted} predicted, {stats.no_face} without a face, "
            f"{stats.reconnects} reconnects; {ended}; stream: {hub.jpegs_encoded} JPEGs",
            markup=False,
        )
    except OSError:
        pass
    if stats.ended == "interrupted":
        raise typer.Exit(stop.exit_code)
