"""Encode images to ``.cae`` bytes and back: the container.

The codec writes and checks the file (``cae_compress.format``): the header,
the codes stored as floats (version 1, dense-code models: float32, float16
or uint8 with a scale and offset, and payload compression), range-coded
integer codes (version 2, the factorized rate models, with their integer
tables: ``cae_compress.coder``), or a model's own streams (version 3, the
model protocol: ``compress``/``decompress``, the hyperprior).  How an image
becomes codes and back is the model's business: a model of versions 1 and 2
carries its layout (``model.layout``, ``cae_compress.layouts``: tiles, or
windows with margins), a model of version 3 windows its images itself.

Channels: a 1-channel model encodes luma; a 3-channel model encodes grayscale
images as gray RGB and the file records 1 channel, so they decode to
grayscale again.  Alpha is dropped (the decoded image is opaque).
"""

from __future__ import annotations

import numpy as np

from cae_compress import format as fmt
from cae_compress.errors import CaeError
from cae_compress.images import to_channels

DEFAULT_DTYPE = "uint8"
DEFAULT_COMPRESSION = "auto"


# ------------------------------------------------------------------- quantization
def quantize(codes: np.ndarray, dtype: str) -> tuple[np.ndarray, float, float]:
    """Codes as stored: float32, float16, or uint8 with a scale and offset over the whole file."""
    if dtype == "float32":
        return codes.astype(np.float32), 1.0, 0.0
    if dtype == "float16":
        return codes.astype(np.float16), 1.0, 0.0
    if dtype == "uint8":
        lo, hi = float(codes.min()), float(codes.max())
        scale = float(np.float32((hi - lo) / 255.0)) or 1.0
        q = np.clip(np.rint((codes - np.float32(lo)) / np.float32(scale)), 0, 255).astype(np.uint8)
        return q, scale, float(np.float32(lo))
    raise CaeError(f"unknown code dtype '{dtype}' (choose from: {', '.join(fmt.DTYPE_CODES)})")


def check_options(dtype: str, compression: str) -> None:
    """Raise :class:`CaeError` for an unknown code dtype or payload compression."""
    if dtype in fmt.ENTROPY_CODED or compression in fmt.ENTROPY_CODED:
        raise CaeError("integer codes and the range coder come with rate models only; they choose them themselves")
    if dtype not in fmt.DTYPE_CODES:
        raise CaeError(f"unknown code dtype '{dtype}' (choose from: {', '.join(fmt.DTYPE_CODES)})")
    _compress_choice(compression)


def _compress_choice(compression: str) -> list[str]:
    if compression == "auto":
        return ["none", "lzma"]  # zlib never beat both of these in our measurements (README)
    if compression not in fmt.COMPRESSION_CODES:
        raise CaeError(f"unknown compression '{compression}' (choose from: auto, {', '.join(fmt.COMPRESSION_CODES)})")
    return [compression]


# ------------------------------------------------------------------------ encode
def prepare(pixels: np.ndarray, model_channels: int) -> tuple[np.ndarray, int]:
    """The pixels the model sees and the channel count the decoded image gets back."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    src_channels = pixels.shape[-1]
    out_channels = 1 if src_channels in (1, 2) or model_channels == 1 else 3
    return to_channels(pixels, model_channels), out_channels


def is_rate_model(model) -> bool:
    """Whether ``model`` entropy-codes integer codes (a rate model) rather than storing floats."""
    return getattr(model, "tables", None) is not None


def encode_codes(model, pixels: np.ndarray, progress=None) -> tuple[np.ndarray, int]:
    """Float32 codes (n_tiles, code_length) of an (H, W, C) uint8 image by the model's layout, and the output channel count."""
    x, out_channels = prepare(pixels, model.tile_shape[2])
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise CaeError("image has no pixels")
    return model.layout.encode(model, x, progress), out_channels


def has_streams(model) -> bool:
    """Whether ``model`` answers the model protocol (``compress``/``decompress`` to streams, version 3 files)."""
    return callable(getattr(model, "compress", None))


def check_effort(model, effort: int | None) -> None:
    """Refuse an ``--effort`` the model does not have (above 1: models with ``max_effort``, the hyperprior), or without TensorFlow."""
    if effort is None or effort == 1:
        return
    top = getattr(model, "max_effort", 1)
    if top == 1:
        raise CaeError(f"--effort above 1 refines the codes of models with streams (the hyperprior); '{model.name}' has none")
    if not 1 <= effort <= top:
        raise CaeError(f"--effort must be between 1 and {top}, got {effort}")
    from cae_compress.requires import require_tensorflow

    require_tensorflow(f"--effort {effort}")


def encode(model, pixels: np.ndarray, dtype: str = DEFAULT_DTYPE, compression: str = DEFAULT_COMPRESSION, progress=None, quality=None,
           effort: int | None = None, on_step=None) -> bytes:
    """The ``.cae`` bytes of an (H, W, C) uint8 image under ``model`` (a runtime model, see ``runtime``).

    ``quality`` (0-100) applies to models with streams (the hyperprior model);
    ``effort`` (1-9) above 1 spends encode time on smaller files
    (``cae_compress.refine``), ``on_step(n)`` counting its steps.
    """
    check_effort(model, effort)
    if has_streams(model):
        x, out_channels = prepare(pixels, model.tile_shape[2])
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise CaeError("image has no pixels")
        extra = {"effort": effort, "on_step": on_step} if effort and effort > 1 else {}
        streams, record = model.compress(x, quality, progress, **extra)
        th, tw, _ = model.tile_shape
        header = fmt.Header(
            width=x.shape[1], height=x.shape[0], channels=out_channels, tile_height=th, tile_width=tw, code_length=model.code_length,
            dtype="int", compression="range", fingerprint=model.fingerprint, model_name=model.name, version=3,
        )
        return fmt.pack_streams(header, record, streams)
    if quality is not None:
        raise CaeError(f"--quality applies to models with a continuous quality (the hyperprior); '{model.name}' has none")
    codes, out_channels = encode_codes(model, pixels, progress)
    th, tw, _ = model.tile_shape
    h, w = pixels.shape[:2]
    if is_rate_model(model):
        from cae_compress.coder import encode_symbols

        header = fmt.Header(
            width=w, height=h, channels=out_channels, tile_height=th, tile_width=tw, code_length=codes.shape[1],
            dtype="int", compression="range", fingerprint=model.fingerprint, model_name=model.name,
        )
        return fmt.pack(header, encode_symbols(np.rint(codes), model.tables))
    methods = _compress_choice(compression)
    stored, scale, offset = quantize(codes, dtype)
    best = None
    for method in methods:
        header = fmt.Header(
            width=w, height=h, channels=out_channels, tile_height=th, tile_width=tw, code_length=codes.shape[1],
            dtype=dtype, compression=method, scale=scale, offset=offset, fingerprint=model.fingerprint, model_name=model.name,
        )
        data = fmt.pack(header, stored)
        if best is None or len(data) < len(best):
            best = data
    return best


def encode_within(model, pixels: np.ndarray, budget: float, effort: int | None = None, on_step=None) -> tuple[bytes, bool]:
    """The file at the highest quality (0-100, bisection) of ``budget`` bytes or fewer, and True; or quality 0's file and False.

    Every quality tried is encoded at ``effort``.
    """
    lo, hi, best, smallest = 0, 100, None, None
    while lo <= hi:
        q = (lo + hi) // 2
        data = encode(model, pixels, quality=q, effort=effort, on_step=on_step)
        if len(data) <= budget:
            best, lo = data, q + 1
        else:
            hi = q - 1
        if q == 0:
            smallest = data  # when nothing fits, the search ends at quality 0
    return (best, True) if best is not None else (smallest, False)


# ------------------------------------------------------------------------ decode
def check_model(header: fmt.Header, model, label: str) -> None:
    """Refuse a model that did not make the file, naming the one that did."""
    if header.fingerprint != model.fingerprint:
        made_by = f"model '{header.model_name}'" if header.model_name else "another model"
        raise CaeError(f"{label}: encoded by {made_by} (fingerprint {header.fingerprint.hex()}), not by '{model.name}' ({model.fingerprint.hex()})")
    if header.streams != has_streams(model):
        raise CaeError(f"{label}: a version {header.version} file, which model '{model.name}' does not read")
    th, tw, _ = model.tile_shape
    if header.streams:
        if (header.tile_height, header.tile_width, header.code_length) != (th, tw, model.code_length):
            raise CaeError(f"{label}: tile {header.tile_height}x{header.tile_width} / code length {header.code_length} do not match the model")
        return
    if header.entropy_coded != is_rate_model(model):
        raise CaeError(f"{label}: {'an entropy-coded file' if header.entropy_coded else 'a file of float codes'} needs a {'rate' if header.entropy_coded else 'dense-code'} model")
    if (header.tile_height, header.tile_width, header.code_length) != (th, tw, model.code_length):
        raise CaeError(f"{label}: tile {header.tile_height}x{header.tile_width} / code length {header.code_length} do not match the model")


def decode_codes(model, codes: np.ndarray, width: int, height: int, channels: int, progress=None) -> np.ndarray:
    """The (height, width, channels) uint8 image of per-tile codes, by the model's layout."""
    out = model.layout.decode(model, codes, height, width, progress)
    return to_channels(out, channels) if channels != model.tile_shape[2] else out


DEFAULT_MAX_PIXELS = 2 * 89_478_485  # Pillow's decompression-bomb limit, about 179 MP


def check_pixel_budget(header: fmt.Header, label: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse a file that declares more than ``max_pixels`` pixels, before any work."""
    if header.width * header.height > max_pixels:
        raise CaeError(f"{label}: declares {header.width}x{header.height} pixels, over the decode budget of {max_pixels} (raise it with --max-pixels)")


def decode(model, data: bytes, label: str = "<input>", progress=None, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The uint8 image (H, W, C) of ``.cae`` bytes, checked against ``model``.

    A file declaring more than ``max_pixels`` pixels is refused before any work.
    """
    header = fmt.parse_header(data, label)
    check_pixel_budget(header, label, max_pixels)
    if header.streams:
        header, record, streams = fmt.unpack_streams(data, label)
        check_model(header, model, label)
        out = model.decompress(streams, record, header.height, header.width, label, progress)
        return to_channels(out, header.channels) if header.channels != out.shape[-1] else out
    header, codes = fmt.unpack(data, label)
    check_model(header, model, label)
    if header.entropy_coded:  # a rate model's tile is one code vector: one row of symbols per tile
        from cae_compress.coder import decode_symbols

        codes = decode_symbols(codes, header.n_tiles, model.tables, label).astype(np.float32)
    return decode_codes(model, codes, header.width, header.height, header.channels, progress)


def reconstruct(model, pixels: np.ndarray, dtype: str = DEFAULT_DTYPE) -> np.ndarray:
    """What ``decode(encode(pixels))`` gives, computed in memory without a file."""
    if has_streams(model):
        return decode(model, encode(model, pixels))
    codes, out_channels = encode_codes(model, pixels)
    if is_rate_model(model):
        values = model.tables.clamp(np.rint(codes)).astype(np.float32)
    else:
        stored, scale, offset = quantize(codes, dtype)
        values = stored.astype(np.float32) * np.float32(scale) + np.float32(offset) if dtype == "uint8" else stored.astype(np.float32)
    return decode_codes(model, values, pixels.shape[1], pixels.shape[0], out_channels)
