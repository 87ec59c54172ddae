"""Image format and size from the first bytes of a file, without decoding it.

Decoders allocate what the header claims: a 593 KB TIFF or a 10 KB WebP can claim
hundreds of megapixels and take gigabytes before any check of OpenCV's fires. So the size
is read here first, for every format the runtime accepts, and an image whose size cannot
be read from its header is refused rather than decoded blind.

Formats, recognised by their signature as OpenCV's own decoders recognise them: PNG,
JPEG, BMP, GIF, WebP, TIFF (and BigTIFF), AVIF, JPEG 2000 (JP2 and raw codestream),
PNM/PAM (P1-P7) and Sun raster. OpenCV's floating-point formats (OpenEXR, Radiance HDR,
PFM) are not accepted: the models take 8-bit pictures.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

ACCEPTED_FORMATS = (
    "PNG", "JPEG", "BMP", "GIF", "WebP", "TIFF", "AVIF", "JPEG 2000", "PNM", "Sun raster"
)  # fmt: skip
# JPEG start-of-frame markers that carry the image size (not DHT/DAC/JPG).
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_ISOBMFF_BRANDS = (b"avif", b"avis")
_PNM_TOKEN = re.compile(rb"(?:\s|#[^\n\r]*[\n\r])*(\d+)")
_MAX_BOX_DEPTH = 8


@dataclass(frozen=True)
class ImageHeader:
    """What the header says: the format, and (width, height) when it could be read."""

    format: str
    size: tuple[int, int] | None

    @property
    def pixels(self) -> int | None:
        return None if self.size is None else self.size[0] * self.size[1]


def read_header(data: bytes) -> ImageHeader | None:
    """The format and size of encoded image bytes; None when no accepted format matches."""
    for signature, name, parse in _PARSERS:
        if signature(data):
            try:
                size = parse(data)
            except (struct.error, IndexError, ValueError):
                size = None
            return ImageHeader(name, size)
    return None


def _png(data: bytes) -> tuple[int, int] | None:
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg(data: bytes) -> tuple[int, int] | None:
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
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    return None


def _bmp(data: bytes) -> tuple[int, int] | None:
    (header_size,) = struct.unpack("<I", data[14:18])
    if header_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", data[18:22])
        return width, height
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)  # a negative height is a top-down image


def _gif(data: bytes) -> tuple[int, int] | None:
    """The larger of the logical screen and the first frame (decoders allocate both)."""
    width, height, flags = struct.unpack("<HHB", data[6:11])
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while pos < len(data):
        block = data[pos]
        if block == 0x2C:  # image descriptor
            _, _, frame_w, frame_h = struct.unpack("<HHHH", data[pos + 1 : pos + 9])
            return max(width, frame_w), max(height, frame_h)
        if block != 0x21:  # anything but an extension: no frame follows
            break
        pos += 2
        while pos < len(data) and data[pos]:  # skip the extension's sub-blocks
            pos += data[pos] + 1
        pos += 1
    return width, height


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            return None
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # the canvas of an extended (e.g. animated) WebP
        if len(data) < 30:
            return None
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


def _tiff(data: bytes) -> tuple[int, int] | None:
    """ImageWidth and ImageLength of the first directory (the page a decoder reads)."""
    order = "<" if data[:2] == b"II" else ">"
    (version,) = struct.unpack(order + "H", data[2:4])
    big = version == 43
    if big:
        (offset,) = struct.unpack(order + "Q", data[8:16])
        (count,) = struct.unpack(order + "Q", data[offset : offset + 8])
        entries, entry_size = offset + 8, 20
    else:
        (offset,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[offset : offset + 2])
        entries, entry_size = offset + 2, 12
    found: dict[int, int] = {}
    for index in range(min(count, 4096)):
        start = entries + index * entry_size
        tag, kind = struct.unpack(order + "HH", data[start : start + 4])
        if tag not in (256, 257):
            continue
        value = data[start + (12 if big else 8) : start + entry_size]
        if kind == 3:  # SHORT
            (number,) = struct.unpack(order + "H", value[:2])
        elif kind == 4:  # LONG
            (number,) = struct.unpack(order + "I", value[:4])
        elif kind == 16 and big:  # LONG8
            (number,) = struct.unpack(order + "Q", value[:8])
        else:
            return None
        # A tag given twice: decoders differ in which they believe, so the larger counts.
        found[tag] = max(found.get(tag, 0), number)
    if 256 not in found or 257 not in found:
        return None
    return found[256], found[257]


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the ISO-BMFF / JP2 boxes in data[start:end]."""
    boxes = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            break
        boxes.append((kind, pos + header, min(pos + size, end)))
        pos += size
    return boxes


def _avif(data: bytes) -> tuple[int, int] | None:
    """The largest 'ispe' (image spatial extent) property: the grid or the image itself."""
    sizes: list[tuple[int, int]] = []

    def walk(start: int, end: int, depth: int) -> None:
        if depth > _MAX_BOX_DEPTH:
            return
        for kind, payload, box_end in _boxes(data, start, end):
            if kind == b"meta":  # a full box: 4 bytes of version and flags first
                walk(payload + 4, box_end, depth + 1)
            elif kind in (b"iprp", b"ipco"):
                walk(payload, box_end, depth + 1)
            elif kind == b"ispe":
                width, height = struct.unpack(">II", data[payload + 4 : payload + 12])
                sizes.append((width, height))

    walk(0, len(data), 0)
    return max(sizes, key=lambda s: s[0] * s[1]) if sizes else None


def _jp2(data: bytes) -> tuple[int, int] | None:
    for kind, payload, end in _boxes(data, 0, len(data)):
        if kind == b"jp2h":
            for inner, start, _ in _boxes(data, payload, end):
                if inner == b"ihdr":
                    height, width = struct.unpack(">II", data[start : start + 8])
                    return width, height
    return None


def _j2k(data: bytes) -> tuple[int, int] | None:
    if data[2:4] != b"\xff\x51":  # SIZ follows SOC
        return None
    xsiz, ysiz, x0, y0 = struct.unpack(">IIII", data[8:24])
    return xsiz - x0, ysiz - y0


def _pnm(data: bytes) -> tuple[int, int] | None:
    if data[1:2] == b"7":  # PAM: "WIDTH n" and "HEIGHT n" lines before ENDHDR
        head = data[: data.find(b"ENDHDR")] if b"ENDHDR" in data[:4096] else b""
        width = re.search(rb"(?m)^\s*WIDTH\s+(\d+)", head)
        height = re.search(rb"(?m)^\s*HEIGHT\s+(\d+)", head)
        return (int(width.group(1)), int(height.group(1))) if width and height else None
    first = _PNM_TOKEN.match(data, 2)
    second = _PNM_TOKEN.match(data, first.end()) if first else None
    if not (first and second) or first.end() - first.start() > 4096:
        return None
    return int(first.group(1)), int(second.group(1))


def _sun_raster(data: bytes) -> tuple[int, int] | None:
    width, height = struct.unpack(">II", data[4:12])
    return width, height


def _is_isobmff_image(data: bytes) -> bool:
    if data[4:8] != b"ftyp":
        return False
    (size,) = struct.unpack(">I", data[:4]) if len(data) >= 4 else (0,)
    brands = data[8:12] + data[16 : max(16, min(size, 64))]
    return any(brands[i : i + 4] in _ISOBMFF_BRANDS for i in range(0, len(brands), 4))


_PARSERS = (
    (lambda d: d[:8] == b"\x89PNG\r\n\x1a\n", "PNG", _png),
    (lambda d: d[:3] == b"\xff\xd8\xff", "JPEG", _jpeg),
    (lambda d: d[:2] == b"BM", "BMP", _bmp),
    (lambda d: d[:6] in (b"GIF87a", b"GIF89a"), "GIF", _gif),
    (lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP", "WebP", _webp),
    (lambda d: d[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), "TIFF", _tiff),
    (_is_isobmff_image, "AVIF", _avif),
    (lambda d: d[:12] == _JP2_SIGNATURE, "JPEG 2000", _jp2),
    (lambda d: d[:4] == b"\xff\x4f\xff\x51", "JPEG 2000", _j2k),
    (lambda d: len(d) > 2 and d[:1] == b"P" and d[1:2] in b"1234567", "PNM", _pnm),
    (lambda d: d[:4] == b"\x59\xa6\x6a\x95", "Sun raster", _sun_raster),
)
