"""Read what we need from a .tflite flatbuffer by hand: operator codes and metadata.

A small reader of the FlatBuffers wire format (little-endian; tables found through
vtables) for the few fields of the TFLite schema that convert/ needs, so that reading op
versions needs neither TensorFlow nor the generated schema code:

  Model:        0 version, 1 operator_codes, 2 subgraphs, 3 description, 4 buffers,
                5 metadata_buffer, 6 metadata, 7 signature_defs
  OperatorCode: 0 deprecated_builtin_code (int8), 1 custom_code, 2 version (int32,
                default 1), 3 builtin_code (int32); the real code is the larger of 0 and 3
  Metadata:     0 name, 1 buffer (index into Model.buffers)
  Buffer:       0 data ([ubyte]), 1 offset (uint64), 2 size (uint64) for large models
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hemiface.core.errors import HemifaceError

TFLITE_IDENTIFIER = b"TFL3"


class FlatbufferError(HemifaceError):
    """The bytes are not a readable TFLite flatbuffer."""


@dataclass(frozen=True)
class OperatorCode:
    builtin_code: int
    version: int
    custom_code: str | None


class _Table:
    """One flatbuffer table at `pos` in `buf`."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        vtable = pos - _i32(buf, pos)
        self.vtable = vtable
        self.vtable_size = _u16(buf, vtable)

    def _field_pos(self, index: int) -> int | None:
        entry = 4 + 2 * index
        if entry >= self.vtable_size:
            return None
        offset = _u16(self.buf, self.vtable + entry)
        return self.pos + offset if offset else None

    def scalar(self, index: int, fmt: str, default: int) -> int:
        pos = self._field_pos(index)
        return default if pos is None else struct.unpack_from("<" + fmt, self.buf, pos)[0]

    def _indirect(self, index: int) -> int | None:
        pos = self._field_pos(index)
        return None if pos is None else pos + _u32(self.buf, pos)

    def string(self, index: int) -> str | None:
        pos = self._indirect(index)
        if pos is None:
            return None
        length = _u32(self.buf, pos)
        return self.buf[pos + 4 : pos + 4 + length].decode("utf-8", "replace")

    def byte_vector(self, index: int) -> tuple[int, int] | None:
        """(start, length) of a [ubyte] vector inside the buffer."""
        pos = self._indirect(index)
        if pos is None:
            return None
        return pos + 4, _u32(self.buf, pos)

    def tables(self, index: int) -> list[_Table]:
        pos = self._indirect(index)
        if pos is None:
            return []
        count = _u32(self.buf, pos)
        items = []
        for i in range(count):
            element = pos + 4 + 4 * i
            items.append(_Table(self.buf, element + _u32(self.buf, element)))
        return items


def _u16(buf: bytes, pos: int) -> int:
    return struct.unpack_from("<H", buf, pos)[0]


def _u32(buf: bytes, pos: int) -> int:
    return struct.unpack_from("<I", buf, pos)[0]


def _i32(buf: bytes, pos: int) -> int:
    return struct.unpack_from("<i", buf, pos)[0]


def _model_table(content: bytes) -> _Table:
    if len(content) < 8 or content[4:8] != TFLITE_IDENTIFIER:
        raise FlatbufferError(
            f"not a TFLite model (identifier {content[4:8]!r}, expected {TFLITE_IDENTIFIER!r})"
        )
    try:
        return _Table(content, _u32(content, 0))
    except struct.error:
        raise FlatbufferError("truncated TFLite flatbuffer") from None


def read_operator_codes(content: bytes) -> list[OperatorCode]:
    """Model.operator_codes in file order (each distinct (op, version) once)."""
    model = _model_table(content)
    try:
        codes = []
        for table in model.tables(1):
            deprecated = table.scalar(0, "b", 0)
            builtin = table.scalar(3, "i", 0)
            codes.append(
                OperatorCode(
                    builtin_code=max(deprecated, builtin),
                    version=table.scalar(2, "i", 1),
                    custom_code=table.string(1),
                )
            )
        return codes
    except (struct.error, UnicodeDecodeError):
        raise FlatbufferError("truncated or corrupt operator_codes in TFLite flatbuffer") from None


def read_metadata(content: bytes) -> dict[str, bytes]:
    """Model.metadata entries by name, with the bytes of the buffer each points to."""
    model = _model_table(content)
    buffers = model.tables(4)
    found: dict[str, bytes] = {}
    for entry in model.tables(6):
        name = entry.string(0) or ""
        index = entry.scalar(1, "I", 0)
        found[name] = _buffer_bytes(content, buffers[index]) if index < len(buffers) else b""
    return found


def _buffer_bytes(content: bytes, buffer: _Table) -> bytes:
    span = buffer.byte_vector(0)
    if span is not None:
        start, length = span
        return content[start : start + length]
    offset = buffer.scalar(1, "Q", 0)
    size = buffer.scalar(2, "Q", 0)
    return content[offset : offset + size] if offset > 1 else b""
