"""Models for inference: tiles in, codes out, and back, behind one small interface.

The codec only needs ``name``, ``fingerprint``, ``tile_shape``,
``code_length``, ``layout`` (how the model cuts an image:
``cae_compress.layouts``), ``encode_tiles(uint8 tiles) -> float32 codes`` and
``decode_tiles(codes) -> uint8 tiles``.  :class:`KerasModel` provides them on
top of a trained :class:`cae_compress.models.CAE` with TensorFlow;
:class:`cae_compress.lite.LiteModel` with LiteRT, without TensorFlow.
"""

from __future__ import annotations

import numpy as np

from cae_compress.pixels import from_model_range, to_model_range

NAME_BYTES = 24  # the .cae header keeps this many bytes of the model name


def header_name(name: str) -> str:
    """A model's name as the .cae header stores it: ASCII, at most :data:`NAME_BYTES` bytes."""
    return name.encode("ascii", "replace")[:NAME_BYTES].decode("ascii")


def layout_of(arch: str):
    """The layout (``cae_compress.layouts``) of an architecture, by its coding in the registry."""
    from cae_compress import layouts, registry

    return layouts.for_coding(registry.get(arch).coding)


class KerasModel:
    """Inference with TensorFlow through the CAE's encoder and decoder, called directly.

    A rate model also needs ``tables``: the integer frequency tables exported
    with it (``cae_compress.coder.Tables``); they are read from its export,
    never recomputed here.
    """

    def __init__(self, cae, name: str, tables=None):
        from cae_compress.models import fingerprint

        self.cae = cae
        self.name = header_name(name)
        self.fingerprint = fingerprint(cae)
        self.tile_shape = cae.tile_shape
        self.code_shape = cae.code_shape
        self.code_length = cae.code_length
        self.value_range = cae.value_range
        self.tables = tables
        self.layout = layout_of(cae.arch)

    backend = "tensorflow"

    def encode_tiles(self, tiles: np.ndarray) -> np.ndarray:
        codes = self.cae.encoder(to_model_range(tiles, self.value_range), training=False)
        return np.asarray(codes, np.float32).reshape(len(tiles), -1)

    def decode_tiles(self, codes: np.ndarray) -> np.ndarray:
        x = np.asarray(codes, np.float32)
        if x.ndim != 4:  # a rate model gets its codes as a grid already
            x = x.reshape(len(codes), *self.code_shape)
        return from_model_range(self.cae.decoder(x, training=False), self.value_range)
