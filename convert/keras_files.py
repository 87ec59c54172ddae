"""Moved to `hemiface.kerasio.files`; kept while callers move over."""

from hemiface.kerasio.files import *  # noqa: F403
from hemiface.kerasio.files import (  # noqa: F401
    KerasFileFacts,
    ModelLoadError,
    code_layers,
    custom_classes,
    is_tf_keras_model,
    keras_cause,
    load_custom_objects,
    names_a_missing_class,
    read_facts,
)
