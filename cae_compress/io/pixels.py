"""uint8 pixels <-> the float range a model works in; shared by every backend (no TensorFlow here).

Both inference paths (TensorFlow and LiteRT) scale with these two functions,
so they feed their networks the very same floats.
"""

from __future__ import annotations

import numpy as np


def to_model_range(pixels: np.ndarray, value_range) -> np.ndarray:
    """uint8 pixels -> float32 in ``value_range``."""
    lo, hi = value_range
    return (pixels.astype("float32") / 255.0) * (hi - lo) + lo


def from_model_range(values, value_range) -> np.ndarray:
    """Model output in ``value_range`` -> uint8 pixels (rounded, clipped; NaN becomes 0)."""
    lo, hi = value_range
    scaled = (np.asarray(values, dtype="float32") - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(np.nan_to_num(scaled)), 0, 255).astype("uint8")
