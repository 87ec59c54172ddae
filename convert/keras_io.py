"""Moved to `hemiface.kerasio`; kept while callers move over."""

from hemiface.kerasio.loading import *  # noqa: F403
from hemiface.kerasio.loading import (  # noqa: F401
    LOADERS,
    LoadedModel,
    ModelLoadError,
    detect_format,
    keras_module_for,
    load_keras_model,
    model_name_for,
    sha256_source,
)
from hemiface.kerasio.quiet import import_keras, quiet_tensorflow  # noqa: F401
