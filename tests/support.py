"""Helpers the test areas share: model sets made of real or stand-in TFLite files.

Importable from any test or conftest as `import support` (pyproject puts tests/ on the
path). Heavy imports (TensorFlow, the interpreter) stay inside the functions.

- `tflite_bytes`: a SavedModel converted to float32, or to full int8 with uint8 input
  and output, by the real TFLiteConverter;
- `tensor_specs`: the manifest's input and output TensorSpec of a .tflite file's bytes,
  read by the interpreter;
- `fake_model_set`: a one-entry model set whose "model" is a few bytes with the right
  sha256, for tests of the manifest itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.runtime.manifest import (
    Manifest,
    ModelEntry,
    Quantization,
    TensorSpec,
    save_manifest,
)

Representative = Callable[[], Iterable[list[np.ndarray]]]


def tflite_bytes(
    saved_model: Path, fmt: str, representative: Representative | None = None
) -> bytes:
    """Convert a SavedModel folder: "float32", or "int8" (full integer, uint8 I/O,
    calibrated on `representative()`, which yields [batch-of-one] lists)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if fmt == "int8":
        if representative is None:
            raise ValueError("int8 needs representative data")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    elif fmt != "float32":
        raise ValueError(f"tflite_bytes makes float32 or int8, not {fmt}")
    content: bytes = converter.convert()
    return content


def _spec(detail: dict[str, Any]) -> TensorSpec:
    scale, zero_point = detail["quantization"]
    quant = Quantization(float(scale), int(zero_point)) if scale else None
    return TensorSpec([int(d) for d in detail["shape"]], np.dtype(detail["dtype"]).name, quant)


def tensor_specs(content: bytes) -> tuple[TensorSpec, TensorSpec]:
    """(input, output) of a single-input, single-output .tflite model."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    return (
        _spec(interpreter.get_input_details()[0]),
        _spec(interpreter.get_output_details()[0]),
    )


def fake_model_set(
    folder: Path, content: bytes = b"TFL3 fake model bytes", **fields: Any
) -> Manifest:
    """A model set of one int8 CNN entry whose file holds `content` (not a real model);
    `fields` override the entry's."""
    (folder / "cnn.int8.tflite").write_bytes(content)
    values: dict[str, Any] = {
        "name": "cnn_stroke_model",
        "title": "CNN",
        "format": "int8",
        "file": "cnn.int8.tflite",
        "sha256": hashlib.sha256(content).hexdigest(),
        "size_bytes": len(content),
        "input": TensorSpec([1, 224, 224, 3], "uint8", Quantization(1 / 255, 0)),
        "output": TensorSpec([1, 1], "uint8", Quantization(1 / 256, 0)),
        **fields,
    }
    manifest = Manifest(models=[ModelEntry(**values)])
    save_manifest(manifest, folder)
    return manifest


def default_sigint() -> None:
    """`preexec_fn` for a child that a test stops with SIGINT, as Ctrl-C at a terminal does.

    A process started in the background by a shell without job control inherits SIGINT
    ignored, and Python then installs no KeyboardInterrupt handler: the child would not
    stop. Restoring the default lets the child's Python install it, whoever started pytest.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def write_ec_key_pair(folder: Path, name: str = "signer") -> tuple[Path, Path]:
    """(private, public): a fresh EC P-256 key pair as PEM files, as `openssl ecparam -name
    prime256v1 -genkey` makes (the private key unencrypted)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def read_mjpeg_part(url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> bytes:
    """The first JPEG of a multipart/x-mixed-replace stream (read with the stdlib only)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        assert response.status == 200, response.status
        kind = response.getheader("Content-Type", "")
        assert kind.startswith("multipart/x-mixed-replace; boundary="), kind
        boundary = kind.split("boundary=", 1)[1]
        assert response.fp.readline().strip() == f"--{boundary}".encode()
        length = None
        while (line := response.fp.readline().strip()) != b"":
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        assert length is not None
        jpeg: bytes = response.fp.read(length)
        return jpeg
    finally:
        connection.close()


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
)


class Chromium:
    """Debian's headless Chromium, driven over the DevTools protocol on a pipe (fds 3 and 4,
    JSON messages ending in NUL): no driver or package beyond the browser itself."""

    def __init__(self, binary: str, profile: Path, size: tuple[int, int] = (1200, 900)) -> None:
        import fcntl
        import os
        import subprocess

        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()
        # Above 4, so that putting them at 3 and 4 in the child cannot clobber one another.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser)]

        def place_fds() -> None:
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                   f"--window-size={size[0]},{size[1]}", "about:blank"]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            preexec_fn=place_fds,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fd in (to_browser, from_browser, *high):
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        import json
        import os

        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._read, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        return self.call(method, self.session, **params)

    def evaluate(self, expression: str) -> Any:
        reply = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        return reply["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        import base64

        data = self.page("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        import os

        try:
            self.call("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except Exception:  # noqa: BLE001 - a browser that hangs is killed
            self.process.kill()
            self.process.wait()
        for fd in (self._read, self._write):
            os.close(fd)
