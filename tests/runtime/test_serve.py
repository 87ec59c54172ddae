"""`hemiface serve`: access on every route, request limits, the stream and events, the
recording, and a viewer that reads nothing never slowing the loop."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
from support import read_mjpeg_part

from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.pipeline import FrameResult, StreamSettings, run_stream
from hemiface.runtime.serve.access import AccessPolicy, read_token_file
from hemiface.runtime.serve.hub import LiveHub, StreamLimits
from hemiface.runtime.serve.recorder import Recorder
from hemiface.runtime.serve.server import ViewServer
from hemiface.runtime.sources import VideoFileSource

TOKEN = "test-token-0123456789abcdef"
GETS = ["/", "/stream.mjpg", "/events", "/snapshot.jpg", "/status", "/no-such-page"]
POSTS = ["/record/start", "/record/stop"]


class Served:
    """A hub and a server on a free loopback port, stopped by `close()`."""

    def __init__(self, policy: AccessPolicy, record_dir: Path | None = None, **options) -> None:
        timeout = options.pop("socket_timeout", 10.0)
        self.hub = LiveHub(StreamLimits(**options))
        self.recorder = Recorder(self.hub, record_dir) if record_dir else None
        self.server = ViewServer(("127.0.0.1", 0), self.hub, policy, self.recorder, timeout)
        self.server.start()
        self.hub.start()
        self.port = self.server.port

    def request(self, method: str, path: str, headers: dict | None = None, body: bytes = b""):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return connection, response

    def status(self, method: str, path: str, headers: dict | None = None) -> int:
        connection, response = self.request(method, path, headers)
        connection.close()
        return response.status

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.stop()
        self.hub.close()
        self.server.stop()


@pytest.fixture
def served(tmp_path: Path):
    made: list[Served] = []

    def make(policy: AccessPolicy | None = None, **options) -> Served:
        made.append(Served(policy or AccessPolicy("127.0.0.1", TOKEN), **options))
        return made[-1]

    yield make
    for one in made:
        one.close()


def frame(value: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    return np.full((size[1], size[0], 3), value, np.uint8)


def result(index: int) -> FrameResult:
    return FrameResult(index, index / 10, None, False, None, None, fps=10.0)


def test_every_route_refuses_no_token_and_a_wrong_token(served, tmp_path: Path) -> None:
    s = served(record_dir=tmp_path)
    s.hub.show_annotated(frame(1))
    for method, paths in (("GET", GETS), ("POST", POSTS)):
        for path in paths:
            assert s.status(method, path) == 401, (method, path)
            assert s.status(method, f"{path}?token=wrong-{TOKEN}") == 403, (method, path)
            assert s.status(method, f"{path}?token={TOKEN[:-1]}") == 403, (method, path)
            bad = {"Authorization": f"Bearer {TOKEN}x"}
            assert s.status(method, path, bad) == 403, (method, path)
    # With the token, in the query or as a bearer header, the routes answer.
    assert s.status("GET", f"/?token={TOKEN}") == 200
    assert s.status("GET", "/snapshot.jpg", {"Authorization": f"Bearer {TOKEN}"}) == 200
    assert s.status("GET", f"/no-such-page?token={TOKEN}") == 404
    assert s.status("POST", f"/record/start?token={TOKEN}") == 200
    assert s.status("POST", f"/record/stop?token={TOKEN}") == 200
    assert tmp_path.is_dir() and not list(tmp_path.glob("*.txt"))


def test_loopback_without_a_token_answers_only_a_loopback_host(served) -> None:
    s = served(AccessPolicy("127.0.0.1"))
    assert s.status("GET", "/status") == 200
    # A page whose DNS name was pointed at 127.0.0.1 (rebinding) must not read the stream.
    for host in ("evil.example", "evil.example:80", f"192.168.1.5:{s.port}"):
        assert s.status("GET", "/stream.mjpg", {"Host": host}) == 403, host
    assert s.status("GET", "/status", {"Host": f"localhost:{s.port}"}) == 200


def test_the_token_is_never_logged_and_nothing_may_be_cached(served, capfd) -> None:
    s = served()
    s.hub.show_annotated(frame(5))
    for path in [*GETS[:1], GETS[3], GETS[4], GETS[5]]:
        connection, response = s.request("GET", f"{path}?token={TOKEN}")
        response.read()
        connection.close()
        assert response.getheader("Cache-Control") == "no-store", path
        assert response.getheader("Referrer-Policy") == "no-referrer"
    s.status("GET", "/?token=wrong")
    out, err = capfd.readouterr()
    assert TOKEN not in out + err and "GET" not in err


def test_a_100_mb_body_is_refused_before_it_is_read(served) -> None:
    s = served()
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as client:
        head = (
            f"POST /record/start?token={TOKEN} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: {100 * 1024 * 1024}\r\n\r\n"
        )
        client.sendall(head.encode() + b"x" * 65536)
        reply = client.recv(4096)
    assert reply.startswith(b"HTTP/1.0 413"), reply[:40]
    assert time.monotonic() - started < 10  # not after reading 100 MB
    chunked = {"Transfer-Encoding": "chunked"}
    assert s.status("POST", f"/record/stop?token={TOKEN}", chunked) == 411


def test_viewers_past_the_limit_get_503(served) -> None:
    s = served(max_viewers=1)
    s.hub.show_annotated(frame(9))
    first, response = s.request("GET", f"/stream.mjpg?token={TOKEN}")
    assert response.status == 200
    assert s.status("GET", f"/stream.mjpg?token={TOKEN}") == 503
    first.close()
    deadline = time.monotonic() + 15
    while s.hub.stream_viewers and time.monotonic() < deadline:
        s.hub.show_annotated(
            frame(int(time.monotonic() * 10) % 250)
        )  # its send fails, it is counted out
        time.sleep(0.05)
    assert s.status("GET", f"/snapshot.jpg?token={TOKEN}") == 200


def test_stream_snapshot_and_events_carry_the_latest(served) -> None:
    s = served()
    s.hub.meta = {"models": [{"name": "m", "title": "M", "threshold": 0.5}]}
    s.hub.show_annotated(frame(200, (160, 120)))
    s.hub.on_result(result(41))
    jpeg = read_mjpeg_part(f"http://127.0.0.1:{s.port}/stream.mjpg?token={TOKEN}")
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (120, 160, 3) and abs(int(decoded.mean()) - 200) <= 2
    connection, response = s.request("GET", f"/snapshot.jpg?token={TOKEN}")
    assert response.getheader("Content-Disposition", "").startswith("attachment; filename=")
    assert response.read() == jpeg  # the stream's JPEG of the same frame
    connection.close()
    connection, response = s.request("GET", f"/events?token={TOKEN}")
    assert response.getheader("Content-Type") == "text/event-stream"
    lines = [response.fp.readline() for _ in range(6)]
    connection.close()
    events = [json.loads(line[6:]) for line in lines if line.startswith(b"data: ")]
    assert events[0]["models"][0]["title"] == "M"
    assert events[1]["frame"] == 41 and events[1]["server"]["recording"] is None


def test_recording_goes_into_the_folder_and_appears_whole(served, tmp_path: Path) -> None:
    s = served(record_dir=tmp_path)
    _, response = s.request("POST", f"/record/start?token={TOKEN}")
    name = json.loads(response.read())["recording"]
    assert name.startswith("hemiface-") and name.endswith(".mp4")
    for i in range(12):
        s.hub.show_annotated(frame(20 * i % 250, (160, 120)))
        time.sleep(0.03)
    assert not (tmp_path / name).exists()  # still being written, under a hidden name
    _, response = s.request("POST", f"/record/stop?token={TOKEN}")
    assert json.loads(response.read())["saved"] == name
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    capture = cv2.VideoCapture(str(tmp_path / name))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames >= 1
    no_folder = served()
    connection, response = no_folder.request("POST", f"/record/start?token={TOKEN}")
    assert response.status == 409 and b"--record-dir" in response.read()


def test_a_viewer_that_reads_nothing_never_slows_the_loop(
    served, model_set_dir: Path, tmp_path: Path, helpers, astronaut
) -> None:
    from hemiface.runtime.modelset import load_model_set

    frames = [helpers.face_frame(astronaut, "right") for _ in range(90)]
    video = helpers.write_video(tmp_path / "face.avi", frames)
    s = served(max_fps=60, socket_timeout=120)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", s.port))
    stalled.sendall(f"GET /stream.mjpg?token={TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    # First make it stall for sure: noise (large JPEGs) until its socket buffers are full
    # and its thread is stuck in a send, several JPEGs behind the encoder.
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(4)]
    deadline, i = time.monotonic() + 60, 0
    while s.hub.jpegs_encoded < s.hub.parts_sent + 4:
        assert time.monotonic() < deadline, "the viewer never fell behind"
        s.hub.show_annotated(noise[i % 4])
        i += 1
        time.sleep(0.01)
    encoded_before = s.hub.jpegs_encoded
    model_set = load_model_set(model_set_dir)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        stats = run_stream(
            s.hub.tap(VideoFileSource(video)), model_set, StreamSettings(crop="center"),
            on_result=s.hub.on_result,
        )  # fmt: skip
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        model_set.close()
    # Every frame went through while the viewer, still connected, read nothing.
    assert stats.frames == 90 and stats.ended == "end of video"
    assert s.hub.stream_viewers == 1
    assert s.hub.jpegs_encoded > encoded_before  # the encoder went on for other viewers
    assert grown < 8 * 1024 * 1024, grown  # one frame and one JPEG held, never a queue
    stalled.close()


def test_a_stalled_viewer_is_dropped_when_its_send_times_out(served) -> None:
    s = served(max_fps=60, socket_timeout=1.0)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", s.port))
    stalled.sendall(f"GET /stream.mjpg?token={TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(4)]
    shown, deadline = 0, time.monotonic() + 30
    while s.hub.stream_viewers != 0 or shown < 10:
        assert time.monotonic() < deadline, "the stalled viewer was never dropped"
        s.hub.show_annotated(noise[shown % 4])
        shown += 1
        time.sleep(0.01)
    stalled.close()


def test_non_loopback_without_a_token_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    for host in ("0.0.0.0", "192.168.1.20", "::"):
        result = subprocess.run(
            [sys.executable, "-m", "hemiface", "serve", "--models", str(tmp_path),
             "--video", str(tmp_path / "v.mp4"), "--host", host],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode != 0 and result.stderr.count("\n") == 1, result.stderr
        assert f"--host {host} is reachable from other machines" in result.stderr
        assert "--token" in result.stderr and "Traceback" not in result.stderr


def test_token_files_and_policies(tmp_path: Path) -> None:
    good = tmp_path / "token"
    good.write_text(TOKEN + "\n")
    assert read_token_file(good) == TOKEN
    for content in ("short", "has space in it 0123456789", "x" * 5000):
        bad = tmp_path / "bad"
        bad.write_text(content)
        with pytest.raises(HemifaceError, match="bad"):
            read_token_file(bad)
    with pytest.raises(HemifaceError, match="cannot read"):
        read_token_file(tmp_path / "missing")
    made = AccessPolicy.make("0.0.0.0", True, None)
    assert made.token is not None and len(made.token) >= 32
    assert AccessPolicy.make("0.0.0.0", True, None).token != made.token
    assert AccessPolicy.make("::1", False, None).token is None
    with pytest.raises(HemifaceError, match="not both"):
        AccessPolicy.make("0.0.0.0", True, good)


@pytest.mark.parametrize("overlap", [False, True], ids=["sequential", "overlap"])
def test_each_result_is_drawn_on_its_own_frame(
    model_set_dir: Path, tmp_path: Path, overlap: bool
) -> None:
    """The hub pairs a result with the frame it came from, also when the loop reads one
    frame ahead (overlap): frame i of the video is grey level 10 * i."""
    from hemiface.runtime.modelset import load_model_set

    path = tmp_path / "ramp.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for i in range(20):
        writer.write(frame(10 * i))
    writer.release()
    hub = LiveHub()
    pairs: list[tuple[int, float]] = []

    def check(result: FrameResult) -> None:
        hub.on_result(result)
        image, paired = hub._frame
        assert paired is result
        pairs.append((result.frame, float(image.mean())))

    model_set = load_model_set(model_set_dir)
    try:
        stats = run_stream(
            hub.tap(VideoFileSource(path)), model_set,
            StreamSettings(crop="center", overlap=overlap), on_result=check,
        )  # fmt: skip
    finally:
        model_set.close()
    assert stats.frames == 20 and len(pairs) == 20
    for index, mean in pairs:
        assert abs(mean - 10 * index) < 3, (index, mean)
    annotated = hub.latest_annotated()
    assert annotated is not None and annotated.shape == (48, 64, 3)
