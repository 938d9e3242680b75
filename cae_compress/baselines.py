"""What the autoencoders are compared with: classic codecs at the same size, and PCA.

* :func:`classic_at_bytes`: JPEG or WebP (Pillow) of an image at the highest
  quality whose file is no larger than a byte budget (the ``.cae`` file's
  size), found by bisection over the quality setting;
* :class:`PCAModel`: the best *linear* code, principal components of training
  tiles, with the same interface as the runtime models, so it goes through
  the very same codec (tiling, quantization, container) and its files have
  exactly the bytes of a ``.cae`` of the same code length.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image

from cae_compress.images import image_bytes, to_channels
from cae_compress.layouts import TILES

CLASSIC = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF", "jxl": "JXL"}
# WebP at its slowest, best method (6), AVIF (libaom through Pillow) at speed 6, JPEG XL (libjxl through
# pillow-jxl-plugin) at effort 7, its default: what users who want small files pick
SETTINGS = {"JPEG": {}, "WEBP": {"method": 6}, "AVIF": {"speed": 6}, "JXL": {"effort": 7}}


def classic_encode(pixels: np.ndarray, codec: str, quality: int) -> bytes:
    fmt = CLASSIC[codec]
    if fmt == "JXL":
        _jxl_plugin()
    return image_bytes(pixels, fmt, quality=quality, **SETTINGS[fmt])


def _jxl_plugin() -> None:
    try:
        import pillow_jxl  # noqa: F401  (registers JPEG XL with Pillow)
    except ImportError:  # pragma: no cover - a dependency
        from cae_compress.errors import CaeError

        raise CaeError("the jxl baseline needs pillow-jxl-plugin (pip install pillow-jxl-plugin)") from None


def classic_decode(data: bytes, channels: int) -> np.ndarray:
    if data[:2] == b"\xff\x0a" or data[4:12] == b"JXL \r\n\x87\n":
        _jxl_plugin()
    with Image.open(io.BytesIO(data)) as img:
        arr = np.asarray(img.convert("L" if channels == 1 else "RGB"))
    return to_channels(arr[..., None] if arr.ndim == 2 else arr, channels)


def classic_at_bytes(pixels: np.ndarray, codec: str, budget: int) -> tuple[bytes, int]:
    """The largest-quality encoding with at most ``budget`` bytes (quality 1 if none fits), and its quality."""
    lo, hi = 1, 100
    best = (classic_encode(pixels, codec, 1), 1)
    while lo <= hi:
        q = (lo + hi) // 2
        data = classic_encode(pixels, codec, q)
        if len(data) <= budget:
            best, lo = (data, q), q + 1
        else:
            hi = q - 1
    return best


class PCAModel:
    """Principal component analysis of tiles as a linear 'autoencoder' (runtime interface)."""

    def __init__(self, tiles: np.ndarray, code_length: int, max_fit: int = 20000, seed: int = 0):
        n, h, w, c = tiles.shape
        if code_length > h * w * c:
            raise ValueError(f"PCA code length {code_length} exceeds the tile's {h * w * c} values")
        rng = np.random.default_rng(seed)
        fit = tiles[rng.permutation(n)[:max_fit]].reshape(min(n, max_fit), -1).astype(np.float64) / 255.0
        self.mean = fit.mean(0)
        centered = fit - self.mean
        _, vectors = np.linalg.eigh(centered.T @ centered / len(fit))
        self.components = vectors[:, ::-1][:, :code_length].astype(np.float32)  # (values, code)
        self.mean = self.mean.astype(np.float32)
        self.name = f"pca-{code_length}"
        self.tile_shape = (h, w, c)
        self.code_length = code_length
        self.fingerprint = hashlib.sha256(self.components.tobytes()).digest()[:8]
        self.layout = TILES

    def encode_tiles(self, tiles: np.ndarray) -> np.ndarray:
        x = tiles.reshape(len(tiles), -1).astype(np.float32) / 255.0
        return (x - self.mean) @ self.components

    def decode_tiles(self, codes: np.ndarray) -> np.ndarray:
        x = codes.astype(np.float32) @ self.components.T + self.mean
        return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8).reshape(len(codes), *self.tile_shape)
