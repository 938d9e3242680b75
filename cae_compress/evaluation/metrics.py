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


def _gaussian(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of (H, W, C) along H then W."""
    k = len(g)
    h = sum(g[i] * a[i : a.shape[0] - k + 1 + i] for i in range(k))
    return sum(g[i] * h[:, i : h.shape[1] - k + 1 + i] for i in range(k))


def _float_images(original, reconstruction) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(original, np.float64), np.asarray(reconstruction, np.float64)
    return (a[..., None], b[..., None]) if a.ndim == 2 else (a, b)


def _ssim_cs(a: np.ndarray, b: np.ndarray, window: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Per channel: the mean SSIM and the mean contrast-structure term, float64 (H, W, C) on the 0-255 scale."""
    size = min(window, a.shape[0], a.shape[1])
    g = _gaussian(size, sigma)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a**2
    var_b = _filter_valid(b * b, g) - mu_b**2
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    cs = (2 * cov + c2) / (var_a + var_b + c2)
    luminance = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
    return (luminance * cs).mean(axis=(0, 1)), cs.mean(axis=(0, 1))


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim(original: np.ndarray, reconstruction: np.ndarray, window: int = 11, sigma: float = 1.5) -> float:
    """Multi-scale SSIM of two (H, W, C) uint8 images (Wang et al. 2003), as ``tf.image.ssim_multiscale`` computes it.

    Five scales with the published weights; between scales, odd sides are
    padded symmetrically at the end and 2x2 blocks averaged; the contrast-
    structure terms of the first four scales and the SSIM of the last, each
    clipped at 0, raised to their weights and multiplied, per channel, then
    averaged over channels.  The metric the learned-compression field
    reports besides PSNR (``ms-ssim-rgb``).
    """
    a, b = _float_images(original, reconstruction)
    terms = []
    for k, weight in enumerate(MS_SSIM_WEIGHTS):
        if k:
            pad = ((0, a.shape[0] % 2), (0, a.shape[1] % 2), (0, 0))
            a, b = (np.pad(x, pad, mode="symmetric") for x in (a, b))
            a, b = (x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2, -1).mean(axis=(1, 3)) for x in (a, b))
        s, cs = _ssim_cs(a, b, window, sigma)
        terms.append(np.maximum(s if k == len(MS_SSIM_WEIGHTS) - 1 else cs, 0.0) ** weight)
    return float(np.mean(np.prod(terms, axis=0)))


def ssim(original: np.ndarray, reconstruction: np.ndarray, window: int = 11, sigma: float = 1.5) -> float:
    """SSIM of two (H, W, C) uint8 images (Wang et al. 2004; the settings of ``tf.image.ssim``).

    An 11x11 Gaussian window (sigma 1.5), 'valid' borders, K1 = 0.01,
    K2 = 0.03, averaged over positions and channels.  Images smaller than the
    window use a window of their size.
    """
    a, b = _float_images(original, reconstruction)
    return float(np.mean(_ssim_cs(a, b, window, sigma)[0]))  # every channel has as many positions


def bd_rate(rate_a, psnr_a, rate_b, psnr_b, low: float | None = None, high: float | None = None) -> float | None:
    """Bjøntegaard delta rate of curve B against curve A, in percent (negative: B needs fewer bits).

    Each curve's log-rate is fitted as a polynomial of PSNR (cubic, or of
    lower degree when a curve has fewer than four points) and the fits are
    averaged over the PSNR interval both curves cover.  ``low``/``high``
    restrict the points used to that range of rates (e.g. 0.2-1.0 bpp).
    None when the curves share no PSNR interval or a curve has under two points.
    """
    def points(rate, psnr):
        r, p = np.asarray(rate, np.float64), np.asarray(psnr, np.float64)
        keep = (r >= (low if low is not None else -np.inf)) & (r <= (high if high is not None else np.inf)) & (r > 0)
        return np.log(r[keep]), p[keep]

    (la, pa), (lb, pb) = points(rate_a, psnr_a), points(rate_b, psnr_b)
    if len(pa) < 2 or len(pb) < 2:
        return None
    lo, hi = max(pa.min(), pb.min()), min(pa.max(), pb.max())
    if not hi > lo:
        return None
    fa = np.polyfit(pa, la, min(3, len(pa) - 1))
    fb = np.polyfit(pb, lb, min(3, len(pb) - 1))
    ia, ib = np.polyint(fa), np.polyint(fb)
    mean_a = (np.polyval(ia, hi) - np.polyval(ia, lo)) / (hi - lo)
    mean_b = (np.polyval(ib, hi) - np.polyval(ib, lo)) / (hi - lo)
    return float((np.exp(mean_b - mean_a) - 1.0) * 100.0)
