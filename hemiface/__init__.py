"""hemiface: laterality classifiers of facial droop, on device.

This package is thin glue (the Typer app). The work lives in hemiface.runtime,
hemiface.convert, hemiface.explain, hemiface.benchmarks, hemiface.synth and hemiface.train.
"""

from hemiface.core.version import __version__

__all__ = ["__version__"]
