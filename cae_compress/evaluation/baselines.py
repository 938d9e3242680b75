"""What the autoencoders are compared with: classic codecs at the same size, and PCA.

* :func:`classic_at_bytes`: JPEG, WebP, AVIF or JPEG XL (Pillow) of an image at the highest
  quality whose file is no larger than a byte budget (the ``.cae`` file's
  size), found by bisection over the quality setting;
* :func:`PCAModel`: the best *linear* code, principal components of training
  tiles, as a dense-code codec (``cae_compress.codecs.dense``).
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image

from cae_compress.codecs.dense import DenseCodec
from cae_compress.errors import CaeError
from cae_compress.io.images import image_bytes, to_channels

# pillow_jxl (registers JPEG XL with Pillow) is imported when JPEG XL is first used: a plugin that costs start-up.

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
        raise CaeError("the jxl baseline needs pillow-jxl-plugin (pip install pillow-jxl-plugin)") from None


def classic_decode(data: bytes, channels: int) -> np.ndarray:
    if data[:2] == b"\xff\x0a" or data[4:12] == b"JXL \r\n\x87\n":
        _jxl_plugin()
    with Image.open(io.BytesIO(data)) as img:
        arr = np.asarray(img.convert("L" if channels == 1 else "RGB"))
    return to_channels(arr[..., None] if arr.ndim == 2 else arr, channels)


def classic_at_bytes(pixels: np.ndarray, codec: str, budget: int) -> tuple[bytes, int]:
    """The largest-quality encoding with at most ``budget`` bytes (quality 1 if none fits), and its quality.

    A quality the codec's encoder refuses for this image (JPEG XL's lossless
    quality 100 on an image of a few pixels) counts as one that does not
    fit; if quality 1 is refused too, its error is raised.
    """
    lo, hi = 1, 100
    best = (classic_encode(pixels, codec, 1), 1)
    while lo <= hi:
        q = (lo + hi) // 2
        try:
            data = classic_encode(pixels, codec, q)
        except CaeError:
            raise
        except Exception:  # the plugin refuses this quality for this image (RuntimeError, OSError, ValueError ...)
            data = None
        if data is not None and len(data) <= budget:
            best, lo = (data, q), q + 1
        else:
            hi = q - 1
    return best


def PCAModel(tiles: np.ndarray, code_length: int, max_fit: int = 20000, seed: int = 0) -> DenseCodec:
    """Principal component analysis of tiles as a linear 'autoencoder': a dense-code codec whose networks are two matrix products.

    It goes through the very same codec as the dense-code models (tiling,
    quantization, container), so its files have exactly the bytes of a
    ``.cae`` of the same code length.
    """
    n, h, w, c = tiles.shape
    if code_length > h * w * c:
        raise ValueError(f"PCA code length {code_length} exceeds the tile's {h * w * c} values")
    rng = np.random.default_rng(seed)
    fit = tiles[rng.permutation(n)[:max_fit]].reshape(min(n, max_fit), -1).astype(np.float64) / 255.0
    mean = fit.mean(0)
    centered = fit - mean
    _, vectors = np.linalg.eigh(centered.T @ centered / len(fit))
    components = vectors[:, ::-1][:, :code_length].astype(np.float32)  # (values, code)
    mean = mean.astype(np.float32)
    nets = {
        "encoder": lambda x: (x.reshape(len(x), -1) - mean) @ components,
        "decoder": lambda codes: (codes @ components.T + mean).reshape(len(codes), h, w, c),
    }
    meta = {"arch": "pca", "fingerprint": hashlib.sha256(components.tobytes()).hexdigest()[:16], "tile_shape": [h, w, c],
            "code_shape": [code_length], "value_range": [0.0, 1.0]}
    return DenseCodec(nets, meta, name=f"pca-{code_length}", backend="numpy")
