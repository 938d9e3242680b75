"""Figures that show what a model does, drawn with NumPy and Pillow (no plotting library).

* :func:`reconstruction_grid`: inputs next to their reconstructions;
* :func:`filter_grid`: the kernels of the first (encoding) convolution;
* :func:`activation_maps`: each filter's response to one image, before and
  after the activation function (GDN in the rate models);
* :func:`error_figure`: one image, its decoding through the real codec, and
  the absolute error map, where padding and tile-border artifacts show.

:func:`inspect_model` writes all four as PNG files; ``cae inspect`` calls it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cae_compress import codec
from cae_compress.codec import prepare
from cae_compress.errors import CaeError
from cae_compress.io.pixels import to_model_range
from cae_compress.io.files import atomic_write, make_folder

GAP = 2
BACKGROUND = (255, 255, 255)


# ---------------------------------------------------------------------- helpers
def _rgb(a: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1) or (H, W, 3) uint8 -> (H, W, 3)."""
    if a.ndim == 2:
        a = a[..., None]
    return np.repeat(a, 3, axis=-1) if a.shape[-1] == 1 else a[..., :3]


def _upscale(a: np.ndarray, k: int) -> np.ndarray:
    return np.repeat(np.repeat(a, k, axis=0), k, axis=1) if k > 1 else a


def _grid(cells: list[np.ndarray], columns: int, gap: int = GAP) -> np.ndarray:
    """Place equally sized RGB cells in a grid with white gaps."""
    h, w, _ = cells[0].shape
    rows = -(-len(cells) // columns)
    out = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, 3), 255, np.uint8)
    for i, c in enumerate(cells):
        r, k = divmod(i, columns)
        out[r * (h + gap) : r * (h + gap) + h, k * (w + gap) : k * (w + gap) + w] = c
    return out


def _normalize(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return np.zeros(a.shape, np.uint8) if hi <= lo else np.rint((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def diverging(a: np.ndarray) -> np.ndarray:
    """Blue (negative) - white (0) - red (positive), symmetric around zero."""
    m = float(np.abs(a).max()) or 1.0
    t = np.clip(a / m, -1, 1)[..., None]
    white = np.ones(3)
    red, blue = np.array([0.8, 0.1, 0.1]), np.array([0.1, 0.2, 0.8])
    rgb = np.where(t >= 0, white + t * (red - white), white - t * (blue - white))
    return np.rint(rgb * 255).astype(np.uint8)


def heat(a: np.ndarray, top: float) -> np.ndarray:
    """0 -> black, then red, yellow, white at ``top`` and above."""
    t = np.clip(a / (top or 1.0), 0, 1)
    r = np.clip(3 * t, 0, 1)
    g = np.clip(3 * t - 1, 0, 1)
    b = np.clip(3 * t - 2, 0, 1)
    return np.rint(np.stack([r, g, b], -1) * 255).astype(np.uint8)


def _labelled(img: np.ndarray, title: str) -> np.ndarray:
    """Add a strip of text above an image."""
    canvas = Image.new("RGB", (max(img.shape[1], 8 * len(title) + 8), img.shape[0] + 16), BACKGROUND)
    canvas.paste(Image.fromarray(img), (0, 16))
    ImageDraw.Draw(canvas).text((2, 2), title, fill=(0, 0, 0))
    return np.asarray(canvas)


def _fit(a: np.ndarray, size: int) -> np.ndarray:
    """Upscale small images (nearest) so their longer side is about ``size``; never shrink."""
    k = max(1, size // max(a.shape[:2]))
    return _upscale(_rgb(a), k)


# ------------------------------------------------------------------------ figures
def reconstruction_grid(originals: list[np.ndarray], reconstructions: list[np.ndarray], size: int = 128, columns: int = 4) -> np.ndarray:
    """Pairs ``input | reconstruction`` side by side, in a grid of ``columns`` pairs."""
    pairs = []
    for a, b in zip(originals, reconstructions):
        fa, fb = _fit(a, size), _fit(b, size)
        pairs.append(np.concatenate([fa, np.full((fa.shape[0], GAP, 3), 255, np.uint8), fb], axis=1))
    h = max(p.shape[0] for p in pairs)
    w = max(p.shape[1] for p in pairs)
    padded = [np.pad(p, ((0, h - p.shape[0]), (0, w - p.shape[1]), (0, 0)), constant_values=255) for p in pairs]
    return _grid(padded, min(columns, len(padded)), gap=3 * GAP)


def first_conv(cae):
    """The encoding convolution: the encoder's first Conv2D layer."""
    for layer in cae.encoder.layers:
        if layer.__class__.__name__ == "Conv2D":
            return layer
    raise CaeError(f"model '{cae.arch}' has no convolution in its encoder")


def filter_grid(cae, scale: int = 16) -> np.ndarray:
    """One tile per filter of the encoding convolution, each normalized to its own range."""
    kernel = np.asarray(first_conv(cae).kernel)  # (kh, kw, in, filters)
    cells = []
    for f in range(kernel.shape[-1]):
        k = kernel[..., f]
        k = k if k.shape[-1] in (1, 3) else k.mean(-1, keepdims=True)
        cells.append(_upscale(_rgb(_normalize(k)), scale))
    return _grid(cells, min(8, len(cells)))


def activation_maps(cae, pixels: np.ndarray, max_side: int = 160) -> np.ndarray:
    """Each filter's map on ``pixels``: pre-activation (blue-white-red) | post-activation (gray).

    The convolution is applied to the whole image (it is fully convolutional),
    after the layers that precede it in the encoder (e.g. zero padding).
    """
    conv = first_conv(cae)
    x, _ = prepare(pixels, cae.tile_shape[2])
    h, w = x.shape[:2]
    step = max(1, -(-max(h, w) // max_side))
    x = to_model_range(x[::step, ::step][None], cae.value_range)
    for layer in cae.encoder.layers[1:]:
        if layer is conv:
            break
        x = np.asarray(layer(x))
    import keras

    pre = np.asarray(keras.ops.conv(x, conv.kernel, strides=conv.strides, padding=conv.padding) + conv.bias)[0]
    layers = cae.encoder.layers
    after = layers[layers.index(conv) + 1] if layers.index(conv) + 1 < len(layers) else None
    if after is not None and after.__class__.__name__ == "GDN":  # rate models: GDN is the nonlinearity
        post = np.asarray(after(pre[None]))[0]
    else:
        post = np.asarray(conv.activation(pre))
    k = max(1, 64 // max(pre.shape[:2]))
    cells = []
    for f in range(pre.shape[-1]):
        a = _upscale(diverging(pre[..., f]), k)
        b = _upscale(_rgb(_normalize(post[..., f])), k)
        cells.append(np.concatenate([a, np.full((a.shape[0], GAP, 3), 255, np.uint8), b], axis=1))
    return _grid(cells, min(4, len(cells)), gap=3 * GAP)


def error_figure(original: np.ndarray, decoded: np.ndarray, size: int = 256) -> tuple[np.ndarray, float]:
    """``input | decoded | |error|`` (heat map, white at the 99th percentile of the error); returns the figure and max error."""
    err = np.abs(_rgb(original).astype(np.int16) - _rgb(decoded).astype(np.int16)).max(-1)
    top = float(np.percentile(err, 99)) or 1.0
    panels = [_fit(original, size), _fit(decoded, size), _upscale(heat(err, top), max(1, size // max(err.shape)))]
    titled = [_labelled(p, t) for p, t in zip(panels, ["input", "decoded", f"|error| (white = {top:.0f})"])]
    h = max(p.shape[0] for p in titled)
    titled = [np.pad(p, ((0, h - p.shape[0]), (0, 0), (0, 0)), constant_values=255) for p in titled]
    sep = np.full((h, 3 * GAP, 3), 255, np.uint8)
    return np.concatenate([titled[0], sep, titled[1], sep, titled[2]], axis=1), float(err.max())


# ------------------------------------------------------------------------- driver
def inspect_model(runtime, images: list[np.ndarray], out_dir: str | Path) -> list[Path]:
    """Write the four figures for ``runtime`` (a model loaded on TensorFlow: ``runtime.cae`` is its Keras model) into ``out_dir``."""
    if not images:
        raise CaeError("no images to inspect: give image files or --dataset")
    out = Path(out_dir)
    make_folder(out)
    written = []

    def save(name: str, array: np.ndarray) -> None:
        written.append(atomic_write(out / name, write=lambda tmp: Image.fromarray(array).save(tmp, format="PNG")))

    reconstructions = [codec.reconstruct(runtime, img) for img in images]
    save("reconstructions.png", reconstruction_grid(images, reconstructions))
    save("filters.png", filter_grid(runtime.cae))
    save("activations.png", activation_maps(runtime.cae, images[0]))
    decoded = codec.decode(runtime, codec.encode(runtime, images[0]))
    figure, _ = error_figure(images[0], decoded)
    save("error.png", figure)
    return written
