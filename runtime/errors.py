"""The one exception type the CLI turns into a one-line message and a non-zero exit.

Library code raises `HemifaceError` (or a subclass) with a message that names the file
and what is wrong; it never prints. The CLI catches it, prints `error: <message>` and
exits with `exit_code`.
"""

from __future__ import annotations

import importlib.util

from hemiface.core.errors import HemifaceError

__all__ = [
    "BackendError",
    "HemifaceError",
    "ImageError",
    "ManifestError",
    "MissingExtraError",
    "require_matplotlib",
    "require_tensorflow",
]


class ManifestError(HemifaceError):
    """The model-set manifest or one of the files it names is missing or wrong."""


class BackendError(HemifaceError):
    """No usable TFLite interpreter, or the one asked for is not installed."""


class ImageError(HemifaceError):
    """An input image cannot be read or decoded."""


class MissingExtraError(HemifaceError):
    """A command needs a dependency that only an optional extra installs."""


def require_tensorflow(command: str) -> None:
    """Fail in one line, before any import, when TensorFlow is not installed.

    Checked with `find_spec` so that the check itself imports nothing heavy.
    """
    if importlib.util.find_spec("tensorflow") is None:
        raise MissingExtraError(
            f"`hemiface {command}` needs TensorFlow, which the base (Pi) install leaves out: "
            "pip install 'hemiface[workstation]'"
        )


def require_matplotlib(command: str) -> None:
    if importlib.util.find_spec("matplotlib") is None:
        raise MissingExtraError(
            f"`hemiface {command}` needs matplotlib: pip install 'hemiface[workstation]'"
        )
