"""Read image files into RGB uint8 arrays, safely.

OpenCV decodes; the pixel count is checked from the file header *before* decoding, so a
PNG that claims 40000x40000 pixels is refused without allocating 4.8 GB. EXIF
orientation is applied (a phone photo stored sideways or mirrored would otherwise swap or
scramble the sides; note that Keras `load_img` ignores EXIF). Grayscale becomes three
equal channels, alpha is dropped (as PIL's convert("RGB") does), 16-bit samples are
scaled to 8 bits.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from hemiface.runtime.errors import ImageError

# 50 megapixels: a 48 MP phone photo passes; decoding it takes ~150 MB of RGB.
MAX_PIXELS = 50_000_000
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# JPEG start-of-frame markers that carry the image size (not DHT/DAC/JPG).
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header without decoding; None if unknown."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:2] == b"\xff\xd8":
        pos = 2
        while pos + 4 <= len(data):
            if data[pos] != 0xFF:
                pos += 1
                continue
            marker = data[pos + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                pos += 1 if marker == 0xFF else 2
                continue
            (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
            if marker in _JPEG_SOF and pos + 9 <= len(data):
                height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
                return width, height
            pos += 2 + length
    return None


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes to an RGB uint8 array (H, W, 3)."""
    if not data:
        raise ImageError(f"{name}: empty file")
    size = header_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageError(
            f"{name}: {size[0]}x{size[1]} pixels is over the limit of {max_pixels:,} "
            "(a guard against decompression bombs)"
        )
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        # IMREAD_COLOR applies EXIF orientation, drops alpha, expands grayscale.
        # IMREAD_ANYDEPTH keeps 16-bit samples so that we scale them ourselves.
        bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    except cv2.error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "decoder error"
        raise ImageError(f"{name}: OpenCV refused to decode it ({reason})") from None
    if bgr is None:
        head = data[:12]
        raise ImageError(f"{name}: not an image OpenCV can decode (file starts with {head!r})")
    if bgr.shape[0] * bgr.shape[1] > max_pixels:
        raise ImageError(
            f"{name}: {bgr.shape[1]}x{bgr.shape[0]} pixels is over the limit of {max_pixels:,}"
        )
    if bgr.dtype == np.uint16:
        bgr = (bgr.astype(np.uint32) * 255 + 32767) // 65535
        bgr = bgr.astype(np.uint8)
    elif bgr.dtype != np.uint8:
        raise ImageError(f"{name}: unsupported sample type {bgr.dtype}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_image(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); ImageError names the file on failure."""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return decode_image(data, str(path), max_pixels)


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder` (recursively), sorted, by suffix."""
    return sorted(
        p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def write_image(path: Path, rgb: np.ndarray, jpeg_quality: int = 95) -> None:
    """Write an RGB uint8 image (format from the suffix); ImageError on failure."""
    path = Path(path)
    params: list[int] = []
    if path.suffix.lower() in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    ok, encoded = cv2.imencode(path.suffix or ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ImageError(f"{path}: OpenCV could not encode this format")
    try:
        path.write_bytes(encoded.tobytes())
    except OSError as exc:
        raise ImageError(f"{path}: cannot write ({exc.strerror or exc})") from None
