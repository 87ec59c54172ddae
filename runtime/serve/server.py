"""The HTTP side: one page, the MJPEG stream, Server-Sent Events, a snapshot, recording.

Standard library `ThreadingHTTPServer`, one thread per connection, bounded:
- every route checks access first (access.py): no token 401, a wrong one 403;
- at most `MAX_CONNECTIONS` connections at once (the rest get 503 at once), at most
  `max_viewers` streams and as many event feeds (the rest get 503);
- each connection's socket times out after `socket_timeout` seconds, for reading the
  request and for sending: a viewer that stops reading is dropped;
- a request body over `MAX_BODY_BYTES` is refused with 413 before it is read;
- no response may be cached (`Cache-Control: no-store`), none is logged (the token
  travels in URLs), no path of a request names a file.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from hemiface.core.domain import NOTICE
from hemiface.runtime.errors import HemifaceError
from hemiface.runtime.serve.access import AccessPolicy, bearer_token
from hemiface.runtime.serve.hub import LiveHub, snapshot_name
from hemiface.runtime.serve.recorder import Recorder

MAX_CONNECTIONS = 16
MAX_BODY_BYTES = 1024  # the routes that take a POST need no body at all
SOCKET_TIMEOUT_S = 10.0
EVENTS_HZ = 10.0  # results a second to a browser; the page draws no faster
HEARTBEAT_S = 15.0
BOUNDARY = "hemiface-frame"
BUSY = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nCache-Control: no-store\r\n\r\n"


def load_page() -> tuple[bytes, str]:
    """The page with the notice filled in, and its Content-Security-Policy: inline script
    and style allowed by their hashes only, everything else from this server alone."""
    text = resources.files("hemiface.runtime.serve").joinpath("page.html").read_text("utf-8")
    text = text.replace("{{NOTICE}}", html.escape(NOTICE))

    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.S)
        return " ".join(
            f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'"
            for b in blocks
        )

    policy = (
        f"default-src 'none'; img-src 'self'; connect-src 'self'; script-src {hashes('script')}; "
        f"style-src {hashes('style')}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return text.encode("utf-8"), policy


class ViewServer(ThreadingHTTPServer):
    """The server: the hub, the access policy, the recorder, and the connection limit."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        hub: LiveHub,
        policy: AccessPolicy,
        recorder: Recorder | None = None,
        socket_timeout: float = SOCKET_TIMEOUT_S,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        try:
            super().__init__(address, ViewHandler)
        except OSError as exc:
            raise HemifaceError(
                f"cannot listen on {address[0]} port {address[1]}: {exc.strerror or exc}"
            ) from None
        self.hub, self.policy, self.recorder = hub, policy, recorder
        self.socket_timeout = socket_timeout
        self.page, self.page_policy = load_page()
        self.event_slots = threading.BoundedSemaphore(hub.limits.max_viewers)
        self._connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="hemiface-http"
        )
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, end the streams (the hub closes them), close the socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5.0)
            self._thread = None
        self.server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._connections.acquire(blocking=False):
            try:
                request.sendall(BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._connections.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()


class ViewHandler(BaseHTTPRequestHandler):
    server: ViewServer
    server_version = "hemiface"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.socket_timeout)  # reads and sends alike

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Nothing is logged: request lines carry the token."""

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        super().end_headers()

    def _allowed(self) -> bool:
        status = self.server.policy.refusal(
            self.path, bearer_token(self.headers.get("Authorization")), self.headers.get("Host")
        )
        if status == 0:
            return True
        self._reply(status, b"token required\n" if status == 401 else b"forbidden\n")
        return False

    def _reply(
        self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8"
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="hemiface"')
        self.end_headers()
        self.wfile.write(body)

    def _json(self, payload: dict[str, Any], status: int = 200) -> None:
        self._reply(status, json.dumps(payload).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        if not self._allowed():
            return
        route = urlsplit(self.path).path
        if route == "/":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(self.server.page)))
            self.send_header("Content-Security-Policy", self.server.page_policy)
            self.end_headers()
            self.wfile.write(self.server.page)
        elif route == "/stream.mjpg":
            self._stream()
        elif route == "/events":
            self._events()
        elif route == "/snapshot.jpg":
            self._snapshot()
        elif route == "/status":
            self._json(self._status())
        else:
            self._reply(404, b"not found\n")

    def do_POST(self) -> None:  # noqa: N802 - the base class's name
        if not self._allowed() or not self._small_body():
            return
        route = urlsplit(self.path).path
        recorder = self.server.recorder
        if route not in ("/record/start", "/record/stop"):
            self._reply(404, b"not found\n")
        elif recorder is None:
            self._json({"error": "recording is off: start serve with --record-dir"}, 409)
        elif route == "/record/start":
            self._json({"recording": recorder.start()})
        else:
            done = recorder.stop()
            self._json({"recording": None, "saved": done.name if done else None})

    def _small_body(self) -> bool:
        """Refuse a big or unsized body before reading it; read (and drop) a small one."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._reply(411, b"send a Content-Length\n")
            return False
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            self._reply(413, b"request body too large\n")
            return False
        self.rfile.read(length)
        return True

    def _status(self) -> dict[str, Any]:
        recorder = self.server.recorder
        return {
            "recording": recorder.current if recorder else None,
            "record_error": recorder.error if recorder else None,
            "can_record": recorder is not None,
            "viewers": self.server.hub.stream_viewers,
        }

    def _snapshot(self) -> None:
        jpeg = self.server.hub.snapshot()
        if jpeg is None:
            self._reply(503, b"no frame yet\n")
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(jpeg)))
        self.send_header("Content-Disposition", f'attachment; filename="{snapshot_name()}"')
        self.end_headers()
        self.wfile.write(jpeg)

    def _stream(self) -> None:
        hub = self.server.hub
        if not hub.add_stream_viewer():
            self._reply(503, b"too many viewers\n")
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.end_headers()
            seq = 0
            while not hub.closed:
                got = hub.wait_jpeg(seq, timeout=1.0)
                if got is None:
                    continue
                seq, jpeg = got
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                head += f"Content-Length: {len(jpeg)}\r\n\r\n"
                self.wfile.write(head.encode() + jpeg + b"\r\n")
                hub.sent_part()
        except OSError:  # gone, or stopped reading until the send timed out: drop it
            self.close_connection = True
        finally:
            hub.remove_stream_viewer()

    def _events(self) -> None:
        hub = self.server.hub
        if not self.server.event_slots.acquire(blocking=False):
            self._reply(503, b"too many viewers\n")
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            meta = json.dumps(hub.meta)
            self.wfile.write(f"retry: 2000\nevent: meta\ndata: {meta}\n\n".encode())
            seq, quiet_since = 0, time.monotonic()
            while not hub.closed:
                got = hub.wait_result(seq, timeout=1.0)
                if got is None:
                    if time.monotonic() - quiet_since > HEARTBEAT_S:
                        self.wfile.write(b": still here\n\n")
                        quiet_since = time.monotonic()
                    continue
                seq, result = got
                payload = json.dumps({**result, "server": self._status()})
                self.wfile.write(f"data: {payload}\n\n".encode())
                quiet_since = time.monotonic()
                time.sleep(1.0 / EVENTS_HZ)
        except OSError:
            self.close_connection = True
        finally:
            self.server.event_slots.release()
