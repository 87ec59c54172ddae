"""A TFLite artifact with its weights shuffled, for the model-randomization sanity check,
made from the file's bytes alone (no TensorFlow, no generated schema code).

Every constant weight buffer of a floating-point or 8-bit type (float32, float16, int8,
uint8) with at least MIN_ELEMENTS values has its values permuted at random in place: each
layer keeps its weights' distribution and scale and loses what training put where. int32
buffers are left alone: they hold shapes and axes (permuting a RESHAPE's target shape
breaks the graph) and, in full-int8 artifacts, the biases. The result is the same
flatbuffer byte for byte apart from the permuted data, so it loads in any interpreter that
loads the original.

The FlatBuffers fields read (TFLite schema): Model 2 subgraphs, 4 buffers; SubGraph 0
tensors; Tensor 0 shape, 1 type, 2 buffer; Buffer 0 data.
"""

from __future__ import annotations

import struct

import numpy as np

from hemiface.runtime.errors import HemifaceError

# TensorType codes of the TFLite schema whose constant buffers are weights worth shuffling.
SHUFFLED_TYPES = {0: np.float32, 1: np.float16, 3: np.uint8, 9: np.int8}
MIN_ELEMENTS = 2


def _u32(buf: bytes | bytearray, pos: int) -> int:
    return int(struct.unpack_from("<I", buf, pos)[0])


def _field(buf: bytes | bytearray, table: int, index: int) -> int | None:
    """Absolute position of field `index` of the table at `table`, or None when absent."""
    vtable = table - int(struct.unpack_from("<i", buf, table)[0])
    size = int(struct.unpack_from("<H", buf, vtable)[0])
    entry = 4 + 2 * index
    if entry >= size:
        return None
    offset = int(struct.unpack_from("<H", buf, vtable + entry)[0])
    return table + offset if offset else None


def _vector(buf: bytes | bytearray, table: int, index: int) -> tuple[int, int] | None:
    """(start of the elements, length) of a vector field."""
    pos = _field(buf, table, index)
    if pos is None:
        return None
    start = pos + _u32(buf, pos)
    return start + 4, _u32(buf, start)


def _tables(buf: bytes | bytearray, table: int, index: int) -> list[int]:
    span = _vector(buf, table, index)
    if span is None:
        return []
    start, length = span
    return [start + 4 * i + _u32(buf, start + 4 * i) for i in range(length)]


def weight_spans(content: bytes) -> list[tuple[int, int, type]]:
    """(byte offset, byte length, dtype) of each constant weight buffer worth shuffling."""
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise HemifaceError("not a TFLite flatbuffer (no TFL3 identifier)")
    try:
        model = _u32(content, 0)
        buffers = _tables(content, model, 4)
        spans: dict[int, tuple[int, int, type]] = {}
        for subgraph in _tables(content, model, 2):
            for tensor in _tables(content, subgraph, 0):
                type_pos = _field(content, tensor, 1)
                kind = content[type_pos] if type_pos is not None else 0
                buffer_pos = _field(content, tensor, 2)
                index = _u32(content, buffer_pos) if buffer_pos is not None else 0
                if kind not in SHUFFLED_TYPES or not 0 < index < len(buffers):
                    continue
                data = _vector(content, buffers[index], 0)
                dtype = SHUFFLED_TYPES[kind]
                size = np.dtype(dtype).itemsize
                if data is None or data[1] < MIN_ELEMENTS * size or data[1] % size:
                    continue
                spans[index] = (data[0], data[1], dtype)
    except (struct.error, IndexError) as exc:
        raise HemifaceError(f"unreadable TFLite flatbuffer ({exc})") from None
    return sorted(spans.values())


def shuffle_weights(content: bytes, seed: int = 0) -> bytes:
    """The artifact with every weight buffer's values permuted (see the module notes)."""
    spans = weight_spans(content)
    if not spans:
        raise HemifaceError("the artifact has no weight buffer to shuffle")
    rng = np.random.default_rng(seed)
    out = bytearray(content)
    for start, length, dtype in spans:
        count = length // np.dtype(dtype).itemsize
        values: np.ndarray = np.frombuffer(content, dtype=dtype, count=count, offset=start)
        out[start : start + length] = values[rng.permutation(values.size)].tobytes()
    return bytes(out)
