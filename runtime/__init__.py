"""hemiface.runtime: the light core (numpy, OpenCV, a TFLite interpreter; no TensorFlow).

It owns the model-set manifest, preprocessing and the interpreter backends; the other
hemiface packages import it; of them it imports only the TF-free `hemiface.core` (labels,
metrics, the folder reader, the error type).
"""

from hemiface.runtime.errors import HemifaceError

__all__ = ["HemifaceError"]
