"""Encode images to ``.cae`` bytes and back: tiling, batching, quantization.

An image of any size is cut into tiles of the model's input size, row by row;
edge tiles are padded by repeating the last row/column (which reconstructs
better than zeros) and the decoder crops the padding away.  Tiles go through
the network in batches of at most 128 (the last padded to a multiple of 8,
never 1), so memory stays bounded and the codes do not depend on how many
tiles an image has.

Rate models (``cae_compress.models.factorized``) are fully convolutional and code the
whole image as one grid of code vectors, one per 8x8 block (the header's
"tile" is that block).  For bounded memory the networks run on windows of at
most :data:`WINDOW` blocks a side, each with a margin of :data:`MARGIN`
blocks of its neighbours' context that is computed and thrown away: the
margin covers the networks' receptive fields, so the result is that of the
whole image at once (to float rounding) and windows leave no seams.  The
codes are rounded to integers and range-coded with the model's integer
tables (``cae_compress.coder``) into a version 2 file.

Channels: a 1-channel model encodes luma; a 3-channel model encodes grayscale
images as gray RGB and the file records 1 channel, so they decode to
grayscale again.  Alpha is dropped (the decoded image is opaque).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from cae_compress import format as fmt
from cae_compress.errors import CaeError
from cae_compress.images import to_channels

BATCH = 128  # tiles per network call, at most
MIN_BATCH = 8  # batches are padded to a multiple of this: never batch size 1, whose float results differ
DEFAULT_DTYPE = "uint8"
DEFAULT_COMPRESSION = "auto"


# ------------------------------------------------------------------------- tiling
def _tile_rows(image: np.ndarray, th: int, tw: int) -> Iterator[np.ndarray]:
    """Yield each row of tiles, (cols, th, tw, C), edge-padded; one row in memory at a time."""
    h, w, _ = image.shape
    cols = -(-w // tw)
    for y in range(0, h, th):
        strip = image[y : y + th]
        strip = np.pad(strip, ((0, th - strip.shape[0]), (0, cols * tw - w), (0, 0)), mode="edge")
        yield strip.reshape(th, cols, tw, -1).swapaxes(0, 1)


def _batches(rows: Iterator[np.ndarray], size: int = BATCH) -> Iterator[tuple[np.ndarray, int]]:
    """Regroup rows of items into batches of ``size`` and their real counts.

    The last batch is padded by repetition to a multiple of :data:`MIN_BATCH`,
    so a one-tile image costs 8 tiles of work rather than 128.
    """
    pending, count = [], 0
    for row in rows:
        pending.append(row)
        count += len(row)
        while count >= size:
            block = np.concatenate(pending)
            yield block[:size], size
            pending, count = [block[size:]], count - size
    if count:
        block = np.concatenate(pending)
        padded = -(-count // MIN_BATCH) * MIN_BATCH
        yield np.concatenate([block, np.repeat(block[-1:], padded - count, axis=0)]), count


def _run_batched(fn, items: Iterator[np.ndarray], progress=None) -> Iterator[np.ndarray]:
    """Apply ``fn`` to fixed-size batches of ``items``; yield the results without the padding."""
    for batch, k in _batches(items):
        yield np.asarray(fn(batch))[:k]
        if progress is not None:
            progress(k)


def _one_tile(fn, tile: np.ndarray, progress=None) -> np.ndarray:
    out = np.asarray(fn(tile))
    if progress is not None:
        progress(1)
    return out


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


WINDOW = 64  # rate models: code blocks per window side (512 pixels)
MARGIN = 4  # rate models: blocks of context around each window (32 pixels; the receptive fields reach under 3 blocks)


def _windows(n: int, window: int | None = None, margin: int | None = None) -> list[tuple[int, int, int, int]]:
    """(start, stop, context start, context stop) of each window along a side of ``n`` blocks."""
    window, margin = window or WINDOW, MARGIN if margin is None else margin
    return [(a, min(n, a + window), max(0, a - margin), min(n, a + window + margin)) for a in range(0, n, window)]


def _rate_encode(model, x: np.ndarray, progress=None) -> np.ndarray:
    """The float code grid (rows, cols, channels) of an image, window by window with context."""
    s = model.tile_shape[0]  # a rate model's tile is the 8x8 block one code vector stands for
    rows, cols = -(-x.shape[0] // s), -(-x.shape[1] // s)
    x = np.pad(x, ((0, rows * s - x.shape[0]), (0, cols * s - x.shape[1]), (0, 0)), mode="edge")
    grid = None
    for r0, r1, rl, rh in _windows(rows):
        for c0, c1, cl, ch in _windows(cols):
            codes = _one_tile(model.encode_tiles, x[None, rl * s : rh * s, cl * s : ch * s], progress)
            codes = codes.reshape(rh - rl, ch - cl, -1)
            if grid is None:
                grid = np.empty((rows, cols, codes.shape[-1]), np.float32)
            grid[r0:r1, c0:c1] = codes[r0 - rl : r1 - rl, c0 - cl : c1 - cl]
    return grid


def _rate_decode(model, grid: np.ndarray, height: int, width: int, progress=None) -> np.ndarray:
    """The uint8 image (height, width, C) of a code grid, window by window with context."""
    s = model.tile_shape[0]
    rows, cols, _ = grid.shape
    out = np.empty((rows * s, cols * s, model.tile_shape[2]), np.uint8)
    for r0, r1, rl, rh in _windows(rows):
        for c0, c1, cl, ch in _windows(cols):
            pixels = _one_tile(model.decode_tiles, grid[None, rl:rh, cl:ch], progress)[0]
            out[r0 * s : r1 * s, c0 * s : c1 * s] = pixels[(r0 - rl) * s : (r1 - rl) * s, (c0 - cl) * s : (c1 - cl) * s]
    return out[:height, :width]


def encode_codes(model, pixels: np.ndarray, progress=None) -> tuple[np.ndarray, int]:
    """Float32 codes (n_tiles, code_length) of an (H, W, C) uint8 image, and the output channel count."""
    th, tw, mc = model.tile_shape
    x, out_channels = prepare(pixels, mc)
    h, w, _ = x.shape
    if h == 0 or w == 0:
        raise CaeError("image has no pixels")
    if is_rate_model(model):
        grid = _rate_encode(model, x, progress)
        return grid.reshape(-1, grid.shape[-1]), out_channels
    n = (-(-h // th)) * (-(-w // tw))
    codes = np.concatenate(list(_run_batched(model.encode_tiles, _tile_rows(x, th, tw), progress)))
    return codes.reshape(n, -1).astype(np.float32), out_channels


def has_streams(model) -> bool:
    """Whether ``model`` answers the model protocol (``compress``/``decompress`` to streams, version 3 files)."""
    return callable(getattr(model, "compress", None))


def check_effort(model, effort: int | None) -> None:
    """Refuse an ``--effort`` the model does not have (above 1: models with ``max_effort``, the hyperprior)."""
    if effort is None or effort == 1:
        return
    top = getattr(model, "max_effort", 1)
    if top == 1:
        raise CaeError(f"--effort above 1 refines the codes of models with streams (the hyperprior); '{model.name}' has none")
    if not 1 <= effort <= top:
        raise CaeError(f"--effort must be between 1 and {top}, got {effort}")


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
    """Reassemble the (height, width, channels) uint8 image from per-tile codes."""
    th, tw, mc = model.tile_shape
    rows, cols = -(-height // th), -(-width // tw)
    if is_rate_model(model):
        out = _rate_decode(model, codes.reshape(rows, cols, -1), height, width, progress)
        return to_channels(out, channels) if channels != mc else out
    out = np.empty((height, width, mc), np.uint8)
    row_codes = (codes[r * cols : (r + 1) * cols] for r in range(rows))
    r = 0
    pending = []
    for tiles in _run_batched(model.decode_tiles, row_codes, progress):
        pending.append(tiles)
        buffered = sum(len(t) for t in pending)
        while buffered >= cols and r < rows:
            block = np.concatenate(pending)
            row, rest = block[:cols], block[cols:]
            strip = row.swapaxes(0, 1).reshape(th, cols * tw, mc)
            y = r * th
            out[y : y + th] = strip[: min(th, height - y), :width]
            r += 1
            pending, buffered = [rest], len(rest)
    return to_channels(out, channels) if channels != mc else out


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
