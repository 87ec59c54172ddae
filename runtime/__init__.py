"""hemiface.runtime: the light core (numpy, OpenCV, a TFLite interpreter; no TensorFlow).

It owns the model-set manifest, preprocessing and the interpreter backends; the other
hemiface packages import it, it imports none of them.
"""

from hemiface.runtime.errors import HemifaceError

__all__ = ["HemifaceError"]
