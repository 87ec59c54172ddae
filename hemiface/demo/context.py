"""The demo's settings and the folders its stages share."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hemiface.core.domain import MODEL_FILES

# Data set sizes: the full build follows train/config.py's plan; --quick is a small set
# that still trains all three models to a meaningful level in a few minutes.
FULL_IMAGES = 3000
QUICK_IMAGES = 600
SEED = 0
# --quick converts the two formats a device chooses between (float32 on this x86 machine,
# full int8 on a Pi): float16 and dynamic-range conversion and verification are most of
# the full convert stage's time.
QUICK_FORMATS = ("float32", "int8")
SAMPLE_IMAGES = 6  # test images run through `predict` and drawn notebook-style
VIDEO_SECONDS, VIDEO_FPS = 6.0, 15.0
# The video's person: seed 1 is a face the Haar cascade finds. Darker synthetic faces are
# often missed (the runtime stage measures it by skin tone and the walk-through says so).
VIDEO_SEED = 1
# The runtime stage's detector table: synthetic faces by face size and skin tone (50 a
# size band), with Haar and the default BlazeFace search.
DETECTOR_FACES = 200
DETECTOR_NAMES = ("haar", "blazeface")

StageProgress = Callable[[str, int, int], None]  # (what, done, total)


def shipped_reference() -> Path:
    """The reference set in this repository's reference/ folder (next to the package
    folders in a clone or an editable install); HEMIFACE_REFERENCE overrides."""
    override = os.environ.get("HEMIFACE_REFERENCE")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "reference"


@dataclass
class DemoContext:
    out: Path
    quick: bool
    progress: StageProgress
    retrain: bool = False
    reference: Path = field(default_factory=shipped_reference)

    @property
    def data(self) -> Path:
        return self.out / "data"

    @property
    def models(self) -> Path:
        return self.out / "models" if self.retrain else self.reference

    @property
    def modelset(self) -> Path:
        return self.out / "modelset"

    def keras_files(self) -> list[Path]:
        """The three Keras models the stages after train read, in the users' file names."""
        return [self.models / file for file in MODEL_FILES.values()]
