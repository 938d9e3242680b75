"""Distortion metrics on uint8 images, in NumPy (no TensorFlow needed).

* ``mse``: mean squared error on the 0-255 scale, over all pixels and images;
* ``psnr``: the mean over images of each image's PSNR in dB (peak 255), the
  convention of the CIFAR-10 figures in the README; an exact image counts
  as :data:`PSNR_CAP` dB instead of infinity;
* ``mse_half_pm1``: MSE/2 with pixels on the [-1, 1] scale, the metric the
  single-layer CAE was published with.
"""

from __future__ import annotations

import numpy as np

PSNR_CAP = 100.0


def per_image_mse(original: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """MSE (0-255 scale) of each image in a batch (N, ...) or of one image."""
    a = np.asarray(original, np.float64)
    b = np.asarray(reconstruction, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    if a.ndim <= 3:
        return np.array([np.mean((a - b) ** 2)])
    return np.mean((a - b) ** 2, axis=tuple(range(1, a.ndim)))


def psnr_from_mse(mse) -> np.ndarray:
    mse = np.asarray(mse, np.float64)
    with np.errstate(divide="ignore"):
        return np.minimum(10 * np.log10(255.0**2 / mse), PSNR_CAP)


def reconstruction_metrics(original: np.ndarray, reconstruction: np.ndarray) -> dict:
    """``mse``, ``psnr`` and ``mse_half_pm1`` of uint8 reconstructions of a batch of images."""
    mse = per_image_mse(original, reconstruction)
    mean_mse = float(np.mean(mse))
    return {
        "mse": mean_mse,
        "psnr": float(np.mean(psnr_from_mse(mse))),
        "mse_half_pm1": mean_mse * (2.0 / 255.0) ** 2 / 2.0,
    }
