"""How a codec of per-tile or per-block codes cuts an image and puts it back: its layout.

The dense-code and factorized codecs (``cae_compress.codecs.dense``,
``cae_compress.codecs.factorized``) each name their layout
(``codec.layout``) and let it drive their two networks (``encode_tiles``,
``decode_tiles``, ``codecs.base.LayoutCodec``); the hyperprior codec windows
its images with :func:`window_grid`.

* :data:`TILES` (dense-code models): the image is cut into tiles of the
  model's input size, row by row; edge tiles are padded by repeating the last
  row/column (which reconstructs better than zeros) and decoding crops the
  padding away.  Tiles go through the network in batches of at most
  :data:`BATCH` (the last padded to a multiple of :data:`MIN_BATCH`, never 1),
  so memory stays bounded.  A tile's code is the same function whatever
  its batch; its last float bits may not be: on some CPUs (AVX2 without
  AVX-512, measured) the network's matrix kernels round a tile's code
  differently by its place in the batch (1e-7 relative).  An encode is
  still deterministic: the same image gives the same bytes.
* :data:`WINDOWS` (the factorized rate models): fully convolutional, one code
  vector per 8x8 block over the whole image.  For bounded memory the networks
  run on windows of at most :data:`WINDOW` blocks a side, each with a margin
  of :data:`MARGIN` blocks of its neighbours' context that is computed and
  thrown away: the margin covers the networks' receptive fields, so the
  result is that of the whole image at once (to float rounding) and windows
  leave no seams.

A model needs ``tile_shape``, ``encode_tiles`` and ``decode_tiles`` (the
networks, on either backend) for its layout to drive it.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

BATCH = 128  # tiles per network call, at most
MIN_BATCH = 8  # batches are padded to a multiple of this: never batch size 1, whose float results differ
WINDOW = 64  # rate models: code blocks per window side (512 pixels)
MARGIN = 4  # rate models: blocks of context around each window (32 pixels; the receptive fields reach under 3 blocks)


# -------------------------------------------------------------------------- tiles
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


class Tiles:
    """Independent tiles of the model's input size: the dense-code models."""

    name = "tiles"

    def steps(self, model, height: int, width: int) -> int:
        """What ``progress`` is told in all while an image of this size is coded: its tiles."""
        th, tw, _ = model.tile_shape
        return (-(-height // th)) * (-(-width // tw))

    def encode(self, model, x: np.ndarray, progress=None) -> np.ndarray:
        """Float32 codes (n_tiles, code_length) of an (H, W, C) image already in the model's channels."""
        th, tw, _ = model.tile_shape
        n = (-(-x.shape[0] // th)) * (-(-x.shape[1] // tw))
        codes = np.concatenate(list(_run_batched(model.encode_tiles, _tile_rows(x, th, tw), progress)))
        return codes.reshape(n, -1).astype(np.float32)

    def decode(self, model, codes: np.ndarray, height: int, width: int, progress=None) -> np.ndarray:
        """The uint8 image (height, width, model channels) of per-tile codes, a row of tiles at a time."""
        th, tw, mc = model.tile_shape
        rows, cols = -(-height // th), -(-width // tw)
        out = np.empty((height, width, mc), np.uint8)
        row_codes = (codes[r * cols : (r + 1) * cols] for r in range(rows))
        r, pending = 0, []
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
        return out


# ------------------------------------------------------------------------ windows
def spans(n: int, window: int, margin: int) -> list[tuple[int, int, int, int]]:
    """(start, stop, context start, context stop) of each window of ``window`` positions, with ``margin`` of context, along a side of ``n``.

    Also the hyperprior's windows (``cae_compress.codecs.hyperprior``, ``cae_compress.models.refine``).
    """
    return [(a, min(n, a + window), max(0, a - margin), min(n, a + window + margin)) for a in range(0, n, window)]


def even_spans(n: int, count: int, margin: int) -> list[tuple[int, int, int, int]]:
    """Like :func:`spans`, but ``count`` windows of nearly equal size (they differ by at most one position) and contexts all of one size.

    Each context is the window with ``margin`` either side, shifted inward at
    the ends of the side so that every context has the same length: a
    network runs every window at the same shape, and LiteRT sets up its
    buffers once.
    """
    size = min(n, -(-n // count) + 2 * margin)
    cuts = [i * n // count for i in range(count + 1)]
    starts = [min(max(0, a - margin), n - size) for a in cuts[:-1]]
    return [(a, b, lo, lo + size) for a, b, lo in zip(cuts, cuts[1:], starts)]


def window_grid(rows: int, cols: int, area: int, margin: int) -> tuple[list, list]:
    """The hyperprior's windows (``cae_compress.codecs.hyperprior``): (row spans, column spans) of :func:`even_spans`.

    Of the grids whose context (window and margins) holds at most ``area``
    positions, the one that computes the fewest positions in all: with
    ``area`` 600 and ``margin`` 2, a Kodak photo (32x48 code positions) is
    one row of four windows, a 12-megapixel photo (188x252) ten rows of
    twelve.
    """
    best = None
    for kr in range(1, rows + 1):
        ctx_r = min(rows, -(-rows // kr) + 2 * margin)
        widest = area // ctx_r
        if widest < min(cols, 2 * margin + 1):
            continue
        kc = 1 if cols <= widest else -(-cols // (widest - 2 * margin))
        ctx_c = min(cols, -(-cols // kc) + 2 * margin)
        cost = kr * kc * ctx_r * ctx_c
        if best is None or cost < best[0]:
            best = (cost, kr, kc)
    if best is None:  # an area below one window with its margins: the smallest windows there are
        best = (0, rows, cols)
    return even_spans(rows, best[1], margin), even_spans(cols, best[2], margin)


def _windows(n: int, window: int | None = None, margin: int | None = None) -> list[tuple[int, int, int, int]]:
    """The rate models' windows along a side of ``n`` blocks (:data:`WINDOW`, :data:`MARGIN` unless given)."""
    return spans(n, window or WINDOW, MARGIN if margin is None else margin)


def _one(fn, x: np.ndarray, progress=None) -> np.ndarray:
    out = np.asarray(fn(x))
    if progress is not None:
        progress(1)
    return out


class Windows:
    """One grid of code vectors over the whole image, computed window by window with context: the rate models."""

    name = "windows"

    def steps(self, model, height: int, width: int) -> int:
        """What ``progress`` is told in all while an image of this size is coded: its windows."""
        s = model.tile_shape[0]
        return len(_windows(-(-height // s))) * len(_windows(-(-width // s)))

    def encode(self, model, x: np.ndarray, progress=None) -> np.ndarray:
        """Float32 codes (rows * cols, channels), one vector per block, in raster order."""
        s = model.tile_shape[0]  # the block one code vector stands for
        rows, cols = -(-x.shape[0] // s), -(-x.shape[1] // s)
        x = np.pad(x, ((0, rows * s - x.shape[0]), (0, cols * s - x.shape[1]), (0, 0)), mode="edge")
        grid = None
        for r0, r1, rl, rh in _windows(rows):
            for c0, c1, cl, ch in _windows(cols):
                codes = _one(model.encode_tiles, x[None, rl * s : rh * s, cl * s : ch * s], progress)
                codes = codes.reshape(rh - rl, ch - cl, -1)
                if grid is None:
                    grid = np.empty((rows, cols, codes.shape[-1]), np.float32)
                grid[r0:r1, c0:c1] = codes[r0 - rl : r1 - rl, c0 - cl : c1 - cl]
        return grid.reshape(rows * cols, -1)

    def decode(self, model, codes: np.ndarray, height: int, width: int, progress=None) -> np.ndarray:
        """The uint8 image (height, width, model channels) of the code grid, window by window with context."""
        s = model.tile_shape[0]
        rows, cols = -(-height // s), -(-width // s)
        grid = codes.reshape(rows, cols, -1)
        out = np.empty((rows * s, cols * s, model.tile_shape[2]), np.uint8)
        for r0, r1, rl, rh in _windows(rows):
            for c0, c1, cl, ch in _windows(cols):
                pixels = _one(model.decode_tiles, grid[None, rl:rh, cl:ch], progress)[0]
                out[r0 * s : r1 * s, c0 * s : c1 * s] = pixels[(r0 - rl) * s : (r1 - rl) * s, (c0 - cl) * s : (c1 - cl) * s]
        return out[:height, :width]


TILES = Tiles()
WINDOWS = Windows()

