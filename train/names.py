"""Names and files of the three reference models (TF-free: import it anywhere)."""

from __future__ import annotations

MODEL_NAMES = ("mobilenetv2_base_model", "mobilenetv2_finetuned_model", "cnn_stroke_model")
MODEL_FILES = {
    "mobilenetv2_base_model": "mobilenetv2_base_model.h5",
    "mobilenetv2_finetuned_model": "mobilenetv2_finetuned_model.h5",
    "cnn_stroke_model": "cnn_stroke_model.keras",
}
MODEL_TITLES = {
    "mobilenetv2_base_model": "Base",
    "mobilenetv2_finetuned_model": "Fine-tuned",
    "cnn_stroke_model": "CNN",
}
# The sigmoid scores LABELS[1]: p = P(Right). Labels name the patient's affected side.
LABELS = ("Left", "Right")
REPORT_JSON = "training_report.json"
REPORT_MD = "training_report.md"
