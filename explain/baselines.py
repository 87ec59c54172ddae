"""IG baselines: the "absence of signal" the path starts from, in model-input units.

`low`/`high` are the input values of pixel 0 and pixel 255 after preprocessing
(0 and 1 for the notebook's /255). Noise baselines can be drawn K times and the
attributions averaged (expected-gradients style, Erion et al.); black, white and blurred
baselines are deterministic, so K > 1 is refused for them.
"""

from __future__ import annotations

import cv2
import numpy as np

from hemiface.core.errors import HemifaceError

BASELINES = ("black", "white", "blur", "noise")
# Blur sigma as a fraction of the image's larger side: ~11 px at 224, enough to wash out
# facial features while keeping the overall brightness and colour.
BLUR_SIGMA_FRACTION = 0.05


def check_baseline(kind: str, samples: int = 1) -> None:
    """Refuse an unknown baseline, or several samples of a deterministic one."""
    if kind not in BASELINES:
        raise HemifaceError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}")
    if samples < 1:
        raise HemifaceError(f"--baseline-samples must be at least 1, got {samples}")
    if samples > 1 and kind != "noise":
        raise HemifaceError(
            f"--baseline-samples {samples} needs --baseline noise ({kind} is deterministic)"
        )


def make_baselines(
    kind: str,
    x: np.ndarray,
    low: float = 0.0,
    high: float = 1.0,
    samples: int = 1,
    seed: int = 0,
) -> np.ndarray:
    """Baselines for the input `x` (H, W, C) as a float32 array (K, H, W, C)."""
    check_baseline(kind, samples)
    x = np.asarray(x, dtype=np.float32)
    if kind == "black":
        return np.full((1, *x.shape), low, dtype=np.float32)
    if kind == "white":
        return np.full((1, *x.shape), high, dtype=np.float32)
    if kind == "blur":
        sigma = BLUR_SIGMA_FRACTION * max(x.shape[:2])
        blurred = cv2.GaussianBlur(x, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
        return blurred.reshape(1, *x.shape).astype(np.float32)
    rng = np.random.default_rng(seed)
    lo, hi = min(low, high), max(low, high)
    return rng.uniform(lo, hi, size=(samples, *x.shape)).astype(np.float32)
