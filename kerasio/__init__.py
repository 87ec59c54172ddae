"""Everything that touches TensorFlow/Keras for more than one command: TensorFlow imported
quietly, Keras model files loaded (Keras 3, Keras 2 through tf-keras, SavedModel folders,
with one-line errors and the custom-objects route) and the batched forward pass.

convert, explain, benchmarks and train all load and predict through this package; the
TF-free `runtime` never imports it.

- `hemiface.kerasio.quiet`: `quiet_tensorflow`, `import_keras` (and `quiet_fds`, the
  fd-level silencer, whose home is the TF-free `hemiface.core.quiet`);
- `hemiface.kerasio.files`: what a .h5/.keras file holds, read without deserialising it
  (saving Keras version, layer config, Lambda layers), `ModelLoadError`, custom objects;
- `hemiface.kerasio.loading`: `load_keras_model` -> `LoadedModel`;
- `hemiface.kerasio.predict`: `predict_batched`, `predict_probabilities`.

Importing this package does not import TensorFlow; the functions do, when called.
"""

from __future__ import annotations

from hemiface.core.quiet import quiet_fds
from hemiface.kerasio.files import ModelLoadError, is_tf_keras_model, load_custom_objects
from hemiface.kerasio.loading import (
    LOADERS,
    LoadedModel,
    detect_format,
    import_tf_keras,
    keras_module_for,
    load_keras_model,
    model_name_for,
)
from hemiface.kerasio.predict import predict_batched, predict_probabilities
from hemiface.kerasio.quiet import QUIET_TF_ENV, import_keras, quiet_tensorflow

__all__ = [
    "QUIET_TF_ENV",
    "LOADERS",
    "LoadedModel",
    "ModelLoadError",
    "detect_format",
    "import_keras",
    "import_tf_keras",
    "is_tf_keras_model",
    "keras_module_for",
    "load_custom_objects",
    "load_keras_model",
    "model_name_for",
    "predict_batched",
    "predict_probabilities",
    "quiet_fds",
    "quiet_tensorflow",
]
