"""The laterality task's vocabulary: labels, the three reference models, the notice."""

from __future__ import annotations

# The sigmoid scores LABELS[1]: p = P(Right). Labels name the patient's affected side.
LABELS = ("Left", "Right")
POSITIVE_LABEL = LABELS[1]

# The three reference models, in the order they are listed everywhere (Base, Fine-tuned, CNN).
MODEL_NAMES = ("mobilenetv2_base_model", "mobilenetv2_finetuned_model", "cnn_stroke_model")
MODEL_TITLES: dict[str, str] = {
    "mobilenetv2_base_model": "Base",
    "mobilenetv2_finetuned_model": "Fine-tuned",
    "cnn_stroke_model": "CNN",
}
# The users' file name of each reference model.
MODEL_FILES: dict[str, str] = {
    "mobilenetv2_base_model": "mobilenetv2_base_model.h5",
    "mobilenetv2_finetuned_model": "mobilenetv2_finetuned_model.h5",
    "cnn_stroke_model": "cnn_stroke_model.keras",
}

NOTICE = "Research and teaching tool, not a medical device: never use it to diagnose."
# The notice where space is short (the live overlay's bottom line).
NOTICE_SHORT = "Research tool, not a medical device"


def model_title(name: str) -> str:
    """The human title of a reference model ("Base", ...), else the name itself."""
    return MODEL_TITLES.get(name, name)
