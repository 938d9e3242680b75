"""The rate models' codec: integer codes of 8x8 blocks, range-coded with per-channel tables, ``.cae`` version 2.

The analysis runs on windows with margins over the whole image
(``layouts.WINDOWS``); its codes are rounded, clamped into each channel's
range and coded channel after channel with the integer tables exported with
the model (``cae_compress.entropy_models.tables``).
"""

from __future__ import annotations

import numpy as np

from cae_compress.codecs.base import LayoutCodec
from cae_compress.codecs.layouts import WINDOWS
from cae_compress.entropy_models.tables import Tables, decode_symbols, encode_symbols


class FactorizedCodec(LayoutCodec):
    """Windows of pixels to a grid of integer codes, one range-coded stream."""

    version = 2
    entropy_coded = True
    reads = (2,)
    layout = WINDOWS

    def __init__(self, nets, meta, entropy=None, **identity):
        super().__init__(nets, meta, entropy, **identity)
        self.tables = Tables(entropy if entropy is not None else {})

    def compress(self, pixels, quality=None, *, progress=None):
        codes = WINDOWS.encode(self, pixels, progress)
        return [encode_symbols(np.rint(codes), self.tables)], b""

    def decompress(self, streams, record, height, width, label="<input>", progress=None):
        self.check_streams(streams, 1, label)
        s = self.tile_shape[0]
        blocks = -(-height // s) * -(-width // s)
        codes = decode_symbols(streams[0], blocks, self.tables, label).astype(np.float32)
        return WINDOWS.decode(self, codes, height, width, progress)
