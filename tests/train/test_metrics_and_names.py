from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from hemiface.core.domain import MODEL_FILES, MODEL_TITLES
from hemiface.train.metrics import evaluate


def test_names_are_the_contract():
    assert MODEL_FILES == {
        "mobilenetv2_base_model": "mobilenetv2_base_model.h5",
        "mobilenetv2_finetuned_model": "mobilenetv2_finetuned_model.h5",
        "cnn_stroke_model": "cnn_stroke_model.keras",
    }
    assert MODEL_TITLES["cnn_stroke_model"] == "CNN"


def test_names_and_cli_import_without_tensorflow():
    code = (
        "import sys, hemiface.train, hemiface.train.names, hemiface.train.cli, "
        "hemiface.train.metrics, hemiface.train.data, hemiface.train.report\n"
        "from hemiface.train import MODEL_FILES\n"
        "print([m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_evaluate_accuracy_flip_consistency_and_bands():
    labels = np.array([0.0, 1.0, 1.0, 0.0])
    p = np.array([0.2, 0.9, 0.4, 0.6])
    p_flip = np.array([0.8, 0.1, 0.6, 0.4])  # exactly 1 - p: perfectly flip-consistent
    severity = np.array([0.2, 0.5, 0.8, 0.9])
    m = evaluate(labels, p, p_flip, severity)
    assert m.accuracy == 0.5
    assert m.flip_consistency == pytest.approx(0.0)
    assert m.flip_label_agreement == 1.0
    assert m.accuracy_by_severity["subtle"]["accuracy"] == 1.0
    assert m.accuracy_by_severity["marked"]["images"] == 2
    assert m.accuracy_by_severity["marked"]["accuracy"] == 0.0
    inconsistent = evaluate(labels, p, p, severity)
    assert inconsistent.flip_consistency == pytest.approx(np.mean(np.abs(p - (1 - p))))
