"""The two TF-free edits of an artifact's bytes: shuffled weights (the sanity check) and
logit outputs (a full-int8 probability saturates)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hemiface.explain.logits import logit_outputs
from hemiface.explain.shuffle import shuffle_weights, weight_spans
from hemiface.runtime.errors import HemifaceError

FILES = (
    "mobilenetv2_base_model+mobilenetv2_finetuned_model.float32.tflite",
    "mobilenetv2_base_model+mobilenetv2_finetuned_model.int8.tflite",
    "cnn_stroke_model.float32.tflite",
    "cnn_stroke_model.int8.tflite",
)


def _outputs(content: bytes, x: np.ndarray) -> list[float]:
    from ai_edge_litert.interpreter import Interpreter

    from hemiface.runtime.fused import dequantize, quantize

    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], quantize(x, detail))
    interpreter.invoke()
    return [dequantize(interpreter.get_tensor(o["index"]), o)
            for o in interpreter.get_output_details()]  # fmt: skip


@pytest.mark.parametrize("name", FILES)
def test_shuffled_artifact_keeps_every_value_but_not_its_place(fused_set, name: str) -> None:  # noqa: ANN001
    content = (Path(fused_set[1]) / name).read_bytes()
    shuffled = shuffle_weights(content, seed=1)
    assert len(shuffled) == len(content) and shuffled != content
    assert shuffle_weights(content, seed=1) == shuffled  # seeded
    spans = weight_spans(content)
    assert spans
    for start, length, dtype in spans:
        before = np.frombuffer(content[start : start + length], dtype=dtype)
        after = np.frombuffer(shuffled[start : start + length], dtype=dtype)
        assert Counter(before.tobytes()) == Counter(after.tobytes())
    # Outside the weight buffers, not a byte moved.
    outside = np.ones(len(content), dtype=bool)
    for start, length, _ in spans:
        outside[start : start + length] = False
    assert np.array_equal(np.frombuffer(content, np.uint8)[outside],
                          np.frombuffer(shuffled, np.uint8)[outside])  # fmt: skip
    x = np.random.default_rng(0).uniform(0, 1, (1, 32, 32, 3)).astype(np.float32)
    assert _outputs(shuffled, x) != _outputs(content, x)  # it loads, and answers otherwise


@pytest.mark.parametrize("name", FILES)
def test_logit_outputs_give_the_logit_of_the_probability(fused_set, name: str) -> None:  # noqa: ANN001
    content = (Path(fused_set[1]) / name).read_bytes()
    x = np.random.default_rng(4).uniform(0, 1, (1, 32, 32, 3)).astype(np.float32)
    probabilities = _outputs(content, x)
    logits = _outputs(logit_outputs(content), x)
    assert len(logits) == len(probabilities)
    quantum = 1 / 256 if "int8" in name else 1e-6
    for p, logit in zip(probabilities, logits, strict=True):
        assert abs(1 / (1 + np.exp(-logit)) - p) <= quantum + 1e-6, (p, logit)


def test_bytes_that_are_not_a_tflite_model_are_refused() -> None:
    with pytest.raises(HemifaceError, match="not a TFLite flatbuffer"):
        shuffle_weights(b"not a model at all")
    with pytest.raises(HemifaceError, match="not a TFLite flatbuffer"):
        logit_outputs(b"PK\x03\x04 zip")
