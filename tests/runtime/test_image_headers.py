"""Every image format is sized from its header before decoding: real files of each format
read right, headers that claim too many pixels are refused without decoding, formats whose
size cannot be read are refused."""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from hemiface.runtime.errors import ImageError
from hemiface.runtime.image_header import read_header
from hemiface.runtime.images import MAX_FILE_BYTES, MAX_PIXELS, decode_image, read_image

WIDTH, HEIGHT = 40, 30
BIG = 30000  # 30000 x 30000 = 900 MP, 18 times the budget


def _picture() -> np.ndarray:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    image[:, : WIDTH // 2] //= 4  # something to recognise after decoding
    return image


def _cv2(ext: str, *params: int, gray: bool = False) -> bytes:
    image = _picture()
    image = image[:, :, 0] if gray else image
    ok, buffer = cv2.imencode(ext, image, list(params))
    assert ok, ext
    return buffer.tobytes()


def _pil(fmt: str, **options: object) -> bytes:
    image_module = pytest.importorskip("PIL.Image")
    buffer = io.BytesIO()
    frames = [image_module.fromarray(_picture()), image_module.fromarray(_picture()[::-1])]
    if options.pop("animated", False):
        options.update(save_all=True, append_images=frames[1:])
    frames[0].save(buffer, fmt, **options)
    return buffer.getvalue()


def _tiff(**options: object) -> bytes:
    tifffile = pytest.importorskip("tifffile")
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, _picture(), photometric="rgb", **options)
    return buffer.getvalue()


# (name, a function making the encoded bytes, the format the header names)
def _files() -> list[tuple[str, Callable[[], bytes], str]]:
    return [
        ("png", lambda: _cv2(".png"), "PNG"),
        ("jpeg", lambda: _cv2(".jpg"), "JPEG"),
        ("progressive-jpeg", lambda: _pil("JPEG", progressive=True), "JPEG"),
        ("bmp", lambda: _cv2(".bmp"), "BMP"),
        ("gif", lambda: _cv2(".gif"), "GIF"),
        ("animated-gif", lambda: _pil("GIF", animated=True), "GIF"),
        ("webp-lossy", lambda: _cv2(".webp", cv2.IMWRITE_WEBP_QUALITY, 80), "WebP"),
        ("webp-lossless", lambda: _cv2(".webp", cv2.IMWRITE_WEBP_QUALITY, 101), "WebP"),
        ("webp-extended", lambda: _pil("WEBP", animated=True), "WebP"),
        ("tiff", lambda: _cv2(".tif"), "TIFF"),
        ("tiff-big-endian", lambda: _tiff(byteorder=">"), "TIFF"),
        ("bigtiff", lambda: _tiff(bigtiff=True), "TIFF"),
        ("avif", lambda: _cv2(".avif"), "AVIF"),
        ("jp2", lambda: _pil("JPEG2000"), "JPEG 2000"),
        ("j2k", lambda: _pil("JPEG2000", no_jp2=True), "JPEG 2000"),
        ("ppm", lambda: _cv2(".ppm"), "PNM"),
        ("pgm", lambda: _cv2(".pgm", gray=True), "PNM"),
        ("pam", lambda: _cv2(".pam"), "PNM"),
        ("sun-raster", lambda: _cv2(".ras"), "Sun raster"),
    ]


@pytest.mark.parametrize(
    ("make", "fmt"), [(m, f) for _, m, f in _files()], ids=[n for n, _, _ in _files()]
)
def test_each_format_is_sized_from_its_header_and_decodes(make, fmt: str) -> None:
    data = make()
    header = read_header(data)
    assert header is not None and header.format == fmt
    assert header.size == (WIDTH, HEIGHT)
    rgb = decode_image(data, f"x.{fmt}")
    assert rgb.shape == (HEIGHT, WIDTH, 3) and rgb.dtype == np.uint8
    # the dark left half is where it was (no format swapped or mirrored anything)
    assert rgb[:, : WIDTH // 2].mean() < rgb[:, WIDTH // 2 :].mean() / 2


def _patch_tiff(data: bytes, width: int, height: int) -> bytes:
    out = bytearray(data)
    order = "<" if data[:2] == b"II" else ">"
    big = struct.unpack(order + "H", data[2:4])[0] == 43
    offset = struct.unpack(order + ("Q" if big else "I"), data[8:16] if big else data[4:8])[0]
    count = struct.unpack(order + ("Q" if big else "H"), data[offset : offset + (8 if big else 2)])[
        0
    ]
    first, size, value_at = offset + (8 if big else 2), (20 if big else 12), (12 if big else 8)
    for i in range(count):
        at = first + i * size
        tag, kind = struct.unpack(order + "HH", data[at : at + 4])
        if tag in (256, 257):
            value = width if tag == 256 else height
            code = {3: "H", 4: "I", 16: "Q"}[kind]
            packed = struct.pack(order + code, value)
            out[at + value_at : at + value_at + len(packed)] = packed
    return bytes(out)


def _patch_at(data: bytes, needle: bytes, skip: int, fmt: str, *values: int) -> bytes:
    at = data.find(needle)
    assert at >= 0, needle
    packed = struct.pack(fmt, *values)
    return data[: at + skip] + packed + data[at + skip + len(packed) :]


def _webp_lossless_bomb() -> bytes:
    data = _cv2(".webp", cv2.IMWRITE_WEBP_QUALITY, 101)
    (bits,) = struct.unpack("<I", data[21:25])
    bits = (bits & ~0x0FFFFFFF) | 16382 | (16382 << 14)
    return data[:21] + struct.pack("<I", bits) + data[25:]


def _webp_canvas_bomb(data: bytes) -> bytes:
    assert data[12:16] == b"VP8X"
    return data[:24] + (BIG - 1).to_bytes(3, "little") * 2 + data[30:]


BOMBS = {
    "png": lambda: _patch_at(_cv2(".png"), b"IHDR", 4, ">II", BIG, BIG),
    "jpeg": lambda: _patch_at(_cv2(".jpg"), b"\xff\xc0", 5, ">HH", 65535, 65535),
    "bmp": lambda: _cv2(".bmp")[:18] + struct.pack("<ii", BIG, -BIG) + _cv2(".bmp")[26:],
    "gif-screen": lambda: _cv2(".gif")[:6] + struct.pack("<HH", 65535, 65535) + _cv2(".gif")[10:],
    "gif-frame": lambda: _patch_at(_cv2(".gif"), b"\x2c\x00\x00\x00\x00", 5, "<HH", 65535, 65535),
    "webp-lossy": lambda: _patch_at(
        _cv2(".webp", cv2.IMWRITE_WEBP_QUALITY, 80), b"\x9d\x01\x2a", 3, "<HH", 16383, 16383
    ),
    "webp-lossless": _webp_lossless_bomb,
    "webp-extended": lambda: _webp_canvas_bomb(_pil("WEBP", animated=True)),
    "tiff": lambda: _patch_tiff(_cv2(".tif"), BIG, BIG),
    "tiff-big-endian": lambda: _patch_tiff(_tiff(byteorder=">"), BIG, BIG),
    "bigtiff": lambda: _patch_tiff(_tiff(bigtiff=True), BIG, BIG),
    "avif": lambda: _patch_at(_cv2(".avif"), b"ispe", 8, ">II", BIG, BIG),
    "jp2": lambda: _patch_at(_pil("JPEG2000"), b"ihdr", 4, ">II", BIG, BIG),
    "j2k": lambda: _patch_at(_pil("JPEG2000", no_jp2=True), b"\xff\x51", 6, ">II", BIG, BIG),
    "ppm": lambda: b"P6\n# a comment\n30000 30000\n255\n" + bytes(64),
    "pam": lambda: b"P7\nWIDTH 30000\nHEIGHT 30000\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n",
    "sun-raster": lambda: _patch_at(_cv2(".ras"), b"\x59\xa6\x6a\x95", 4, ">II", BIG, BIG),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_header_over_the_pixel_budget_is_refused_without_decoding(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = BOMBS[name]()
    header = read_header(data)
    assert header is not None and header.pixels is not None and header.pixels > MAX_PIXELS

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded an image whose header is over the budget")

    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    with pytest.raises(ImageError, match="over the limit of 50,000,000") as info:
        decode_image(data, f"bomb-{name}")
    assert str(info.value).startswith(f"bomb-{name}: ") and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_cv2(".png")[:20], "the PNG header does not give the image size"),
        (_cv2(".jpg")[:40], "the JPEG header does not give the image size"),
        (b"II*\x00\xff\xff\xff\x00", "the TIFF header does not give the image size"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "the WebP header does not give the image size"),
        (b"P6\nwide high\n", "the PNM header does not give the image size"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(8) + bytes(20), "says 0x0 pixels"),
        (b"v/1\x01\x02\x00\x00\x00channels", "not an image format hemiface reads"),  # OpenEXR
        (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 30 +X 40\n", "not an image format"),
        (b"PF\n40 30\n-1\n", "not an image format"),  # PFM: floating point
        (b"this is not a picture\n", "not an image format hemiface reads"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "not an image format"),
    ],
    ids=[
        "png-cut", "jpeg-cut", "tiff-no-ifd", "webp-cut", "pnm-no-size", "png-zero",
        "openexr", "radiance-hdr", "pfm", "text", "heic",
    ],
)  # fmt: skip
def test_what_cannot_be_sized_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message) as info:
        decode_image(data, "odd.img")
    assert str(info.value).startswith("odd.img: ") and "\n" not in str(info.value)


def test_huge_files_and_special_files_are_not_read(tmp_path: Path) -> None:
    sparse = tmp_path / "huge.png"
    with open(sparse, "wb") as handle:
        handle.write(_cv2(".png"))
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used, nothing read
    with pytest.raises(ImageError, match="larger than 256 MB"):
        read_image(sparse)
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="not a regular file"):
        read_image(fifo)  # would block forever if it were opened
