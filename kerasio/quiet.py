"""TensorFlow imported without its log noise on the terminal."""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from hemiface.core.quiet import quiet_fds

# What TensorFlow's native libraries print on import whatever TF_CPP_MIN_LOG_LEVEL says
# (absl logs before its InitializeLog: oneDNN and CUDA-stub notices of the `tensorflow`
# wheel): absl's own preamble and lines in its "I0000 00:00:... file.cc:N] " layout.
# The environment that keeps TensorFlow's C++ logging quiet, for a child process too.
QUIET_TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}
_IMPORT_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)"
    r"|[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\] )"
)


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ and absl log noise off the terminal: call before anything
    imports TensorFlow. Imports it with the native stderr captured, then passes on every
    captured line that is not import-time log noise (a real error still shows)."""
    for key, value in QUIET_TF_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    if "tensorflow" in sys.modules:
        return
    with quiet_fds(2) as captured:
        import tensorflow  # noqa: F401
    kept = [
        line
        for line in "".join(captured).splitlines()
        if line.strip() and not _IMPORT_NOISE.match(line)
    ]
    if kept:
        sys.stderr.write("\n".join(kept) + "\n")


def import_keras() -> Any:
    quiet_tensorflow()
    import keras
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return keras
