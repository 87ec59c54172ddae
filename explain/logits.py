"""A TFLite artifact that outputs its models' logits instead of their probabilities, made
from the file's bytes alone (no TensorFlow).

Why: a full-int8 sigmoid output has 256 levels (scale 1/256), so for a confident face every
P(Right) above 255/256 reads 0.996 and no occlusion window can move it: the map comes out
flat. The logit (the LOGISTIC op's input) keeps its own, much finer quantization where the
probability saturates. Each graph output is traced back through QUANTIZE / DEQUANTIZE to the
LOGISTIC op that makes it, and the subgraph's output list is pointed at that op's input: one
int32 changed in place per output, everything else byte for byte the same (the LOGISTIC op
still runs; nothing reads it).

FlatBuffers fields read (TFLite schema): Model 1 operator_codes, 2 subgraphs; OperatorCode
0 deprecated_builtin_code, 3 builtin_code; SubGraph 2 outputs, 3 operators; Operator
0 opcode_index, 1 inputs, 2 outputs.
"""

from __future__ import annotations

import struct

from hemiface.explain.shuffle import _field, _tables, _u32, _vector
from hemiface.runtime.errors import HemifaceError

LOGISTIC, DEQUANTIZE, QUANTIZE = 14, 6, 114


def _int32s(buf: bytes | bytearray, table: int, index: int) -> tuple[int, list[int]]:
    span = _vector(buf, table, index)
    if span is None:
        return 0, []
    start, length = span
    return start, [int(v) for v in struct.unpack_from(f"<{length}i", buf, start)]


def _builtin_codes(buf: bytes, model: int) -> list[int]:
    codes = []
    for code in _tables(buf, model, 1):
        old = _field(buf, code, 0)
        new = _field(buf, code, 3)
        deprecated = struct.unpack_from("<b", buf, old)[0] if old is not None else 0
        builtin = struct.unpack_from("<i", buf, new)[0] if new is not None else 0
        codes.append(max(int(deprecated), int(builtin)))
    return codes


def logit_outputs(content: bytes) -> bytes:
    """The artifact with every output moved from sigmoid(logit) to the logit itself."""
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise HemifaceError("not a TFLite flatbuffer (no TFL3 identifier)")
    out = bytearray(content)
    try:
        model = _u32(content, 0)
        codes = _builtin_codes(content, model)
        subgraph = _tables(content, model, 2)[0]
        producer: dict[int, tuple[int, list[int]]] = {}  # tensor -> (op code, op inputs)
        for op in _tables(content, subgraph, 3):
            index_pos = _field(content, op, 0)
            code = codes[_u32(content, index_pos) if index_pos is not None else 0]
            _, inputs = _int32s(content, op, 1)
            for tensor in _int32s(content, op, 2)[1]:
                producer[tensor] = (code, inputs)
        start, outputs = _int32s(content, subgraph, 2)
        for position, tensor in enumerate(outputs):
            code, inputs = producer.get(tensor, (-1, []))
            while code in (QUANTIZE, DEQUANTIZE):
                code, inputs = producer.get(inputs[0], (-1, []))
            if code != LOGISTIC or not inputs:
                raise HemifaceError(f"output {position} is not made by a sigmoid (LOGISTIC op)")
            struct.pack_into("<i", out, start + 4 * position, inputs[0])
    except (struct.error, IndexError) as exc:
        raise HemifaceError(f"unreadable TFLite flatbuffer ({exc})") from None
    return bytes(out)
