"""Read image files into RGB uint8 arrays, safely.

OpenCV decodes; the format and pixel count are read from the file header *before*
decoding (`image_header`), so a PNG that claims 40000x40000 pixels or a small TIFF or
WebP that claims hundreds of megapixels is refused without allocating gigabytes, and a
format whose size cannot be read from its header is not decoded at all. EXIF orientation
is applied (a phone photo stored sideways or mirrored would otherwise swap or scramble
the sides; note that Keras `load_img` ignores EXIF). Grayscale becomes three equal
channels, alpha is dropped (as PIL's convert("RGB") does), 16-bit samples are scaled to 8
bits.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from hemiface.core.checksum import read_at_most
from hemiface.core.folders import IMAGE_SUFFIXES  # noqa: F401 - re-exported
from hemiface.core.folders import image_files as list_images  # noqa: F401 - re-exported
from hemiface.core.quiet import quiet_fds
from hemiface.runtime.errors import ImageError
from hemiface.runtime.image_header import ACCEPTED_FORMATS, read_header
from hemiface.runtime.manifest import atomic_write_bytes

# 50 megapixels: a 48 MP phone photo passes; decoding it takes ~150 MB of RGB (twice that
# while the colour order is swapped, twice again for 16-bit samples).
MAX_PIXELS = 50_000_000
# A JPEG or TIFF that claims far more pixels than its bytes can hold makes the decoder
# allocate for the claim (a 654-byte JPEG peaked near 1-2 GB) before it finds the data
# missing. The densest real encodings measured here (a uniform 24 MP picture, progressive
# JPEG) hold about 255 pixels a byte; 2048 leaves a margin of 8, and any claim up to 4 MP
# (12 MB of RGB) is decoded whatever the file's size.
DENSITY_CHECKED = ("JPEG", "TIFF")
MAX_PIXELS_PER_BYTE = 2048
DENSITY_FLOOR = 4_000_000
# An encoded image larger than this is not read into memory at all.
MAX_FILE_BYTES = 256 << 20


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header without decoding; None if unknown."""
    header = read_header(data)
    return None if header is None else header.size


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes to an RGB uint8 array (H, W, 3)."""
    if not data:
        raise ImageError(f"{name}: empty file")
    header = read_header(data)
    if header is None:
        raise ImageError(
            f"{name}: not an image format hemiface reads ({', '.join(ACCEPTED_FORMATS)}); "
            f"the file starts with {data[:12]!r}"
        )
    if header.size is None:
        raise ImageError(
            f"{name}: the {header.format} header does not give the image size "
            "(truncated or damaged?)"
        )
    width, height = header.size
    if width < 1 or height < 1:
        raise ImageError(f"{name}: the {header.format} header says {width}x{height} pixels")
    if width * height > max_pixels:
        raise ImageError(
            f"{name}: {width}x{height} pixels is over the limit of {max_pixels:,} "
            "(a guard against decompression bombs)"
        )
    if header.format in DENSITY_CHECKED and width * height > max(
        DENSITY_FLOOR, MAX_PIXELS_PER_BYTE * len(data)
    ):
        raise ImageError(
            f"{name}: the {header.format} header claims {width}x{height} pixels, more than "
            f"{len(data):,} bytes can hold (damaged or hostile); refusing to decode it"
        )
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        # IMREAD_COLOR applies EXIF orientation, drops alpha, expands grayscale.
        # IMREAD_ANYDEPTH keeps 16-bit samples so that we scale them ourselves.
        # libpng and libjpeg print their complaints to stderr themselves: silenced, as
        # the one-line ImageError below says what went wrong.
        with quiet_fds(2):
            bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    except cv2.error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "decoder error"
        raise ImageError(f"{name}: OpenCV refused to decode it ({reason})") from None
    if bgr is None:
        raise ImageError(
            f"{name}: OpenCV cannot decode this {header.format} file (damaged, or a variant "
            "this OpenCV build does not read)"
        )
    if bgr.shape[0] * bgr.shape[1] > max_pixels:
        raise ImageError(
            f"{name}: {bgr.shape[1]}x{bgr.shape[0]} pixels is over the limit of {max_pixels:,}"
        )
    if _is_rgb_pam(data) and bgr.ndim == 3:
        # OpenCV hands a three-channel PAM back in the file's order, R G B, where every
        # other format arrives as B G R (its PAM writer writes B G R too, against the
        # format's definition): put it in the order the rest of this function expects.
        bgr = np.ascontiguousarray(bgr[..., ::-1])
    if bgr.dtype == np.uint16:
        bgr = (bgr.astype(np.uint32) * 255 + 32767) // 65535
        bgr = bgr.astype(np.uint8)
    elif bgr.dtype != np.uint8:
        raise ImageError(f"{name}: unsupported sample type {bgr.dtype}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


_PAM_DEPTH = re.compile(rb"(?:^|\n)DEPTH[ \t]+(\d+)")


def _is_rgb_pam(data: bytes) -> bool:
    """A PAM (P7) file of three channels (TUPLTYPE RGB; RGB_ALPHA decodes as it should)."""
    if data[:3] not in (b"P7\n", b"P7 ", b"P7\r"):
        return False
    end = data.find(b"ENDHDR", 0, 4096)
    match = _PAM_DEPTH.search(data[: end if end > 0 else 4096])
    return match is not None and int(match.group(1)) == 3


def read_image(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); ImageError names the file on failure."""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    if path.exists() and not path.is_file():
        raise ImageError(f"{path}: not a regular file (a device or a pipe?)")
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ImageError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MB; not read as an image")
        with open(path, "rb") as handle:
            data = read_at_most(handle, MAX_FILE_BYTES)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MB; not read as an image")
    return decode_image(data, str(path), max_pixels)


def write_image(path: Path, rgb: np.ndarray, jpeg_quality: int = 95) -> None:
    """Write an RGB uint8 image (format from the suffix), whole or not at all; ImageError
    on failure."""
    path = Path(path)
    params: list[int] = []
    if path.suffix.lower() in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    try:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(path.suffix or ".png", bgr, params)
    except cv2.error:
        ok = False
    if not ok:
        raise ImageError(f"{path}: OpenCV could not encode this format")
    try:
        # A temporary file renamed into place: a full disk leaves the old figure (or none),
        # never a partial one.
        atomic_write_bytes(path, encoded.tobytes())
    except OSError as exc:
        raise ImageError(f"{path}: cannot write ({exc.strerror or exc})") from None
