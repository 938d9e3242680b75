"""The dense-code family's codec: a fixed-length float code per tile, ``.cae`` version 1.

``dense``, ``single-layer`` and ``deep`` models, and PCA
(``cae_compress.evaluation.baselines``), cut an image into tiles of their
input size (``layouts.TILES``) and store each tile's code as float32,
float16, or uint8 with one scale and offset for the file, with the payload
compressed or not (``--dtype``, ``--compression``).
"""

from __future__ import annotations

import numpy as np

from cae_compress.codecs.base import LayoutCodec
from cae_compress.codecs.layouts import TILES
from cae_compress.errors import CaeError
from cae_compress.io import format as fmt

DEFAULT_DTYPE = "uint8"
DEFAULT_COMPRESSION = "auto"
DTYPES = tuple(d for d in fmt.DTYPE_CODES if d not in fmt.ENTROPY_CODED)
COMPRESSIONS = tuple(c for c in fmt.COMPRESSION_CODES if c not in fmt.ENTROPY_CODED)


def check_options(dtype: str, compression: str) -> None:
    """Raise :class:`CaeError` for an unknown code dtype or payload compression."""
    if dtype in fmt.ENTROPY_CODED or compression in fmt.ENTROPY_CODED:
        raise CaeError("integer codes and the range coder come with rate models only; they choose them themselves")
    if dtype not in DTYPES:
        raise CaeError(f"unknown code dtype '{dtype}' (choose from: {', '.join(DTYPES)})")
    _compressions(compression)


def _compressions(compression: str) -> list[str]:
    if compression == "auto":
        return ["none", "lzma"]  # zlib never beat both of these in our measurements (README)
    if compression not in COMPRESSIONS:
        raise CaeError(f"unknown compression '{compression}' (choose from: auto, {', '.join(COMPRESSIONS)})")
    return [compression]


class DenseCodec(LayoutCodec):
    """Tiles to float codes and back; the codes stored as ``dtype``, the payload compressed by ``compression``."""

    version = 1
    reads = (1,)
    layout = TILES
    options = ("dtype", "compression")

    def compress(self, pixels, quality=None, *, progress=None, dtype: str = DEFAULT_DTYPE, compression: str = DEFAULT_COMPRESSION):
        check_options(dtype, compression)
        codes = TILES.encode(self, pixels, progress)
        stored, scale, offset = fmt.quantize(codes, dtype)
        raw = np.ascontiguousarray(stored, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
        payload, method = min(((fmt.compress_payload(raw, m), m) for m in _compressions(compression)), key=lambda pm: len(pm[0]))
        return [payload], fmt.FloatRecord(dtype, method, scale, offset)

    @classmethod
    def describe_record(cls, record) -> dict:
        return {"dtype": record.dtype, "compression": record.compression, **({"scale": record.scale, "offset": record.offset} if record.dtype == "uint8" else {})}

    def decompress(self, streams, record, height, width, label="<input>", progress=None):
        self.check_streams(streams, 1, label)
        th, tw, _ = self.tile_shape
        codes = fmt.float_codes(record, streams[0], -(-height // th) * -(-width // tw), self.code_length, label)
        return TILES.decode(self, codes, height, width, progress)
