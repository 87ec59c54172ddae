"""hemiface.train: the three reference models, trained on synthetic faces (needs TensorFlow).

`MODEL_FILES`, `MODEL_TITLES` and `MODEL_NAMES` come from the TF-free `hemiface.core.domain`;
`build_base_model`, `build_cnn` and `train_all` import TensorFlow on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from hemiface.core.domain import MODEL_FILES, MODEL_NAMES, MODEL_TITLES

__all__ = ["MODEL_FILES", "MODEL_NAMES", "MODEL_TITLES", "build_base_model", "build_cnn",
           "train_all"]  # fmt: skip
_LAZY = {"build_base_model": "hemiface.train.models", "build_cnn": "hemiface.train.models",
         "train_all": "hemiface.train.trainer"}  # fmt: skip


def __getattr__(name: str) -> Any:  # noqa: ANN401 - lazy re-export
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hemiface.train' has no attribute {name!r}")
