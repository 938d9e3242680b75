"""The runtime protocol every architecture answers, and what every loaded model carries.

A codec turns the pixels of one image into the streams and record of a
``.cae`` file and back; the container (``cae_compress.codec``) adds the
header and checks it, and never looks inside:

* ``compress(pixels, quality=None, *, progress=None, **options) -> (streams, record)``:
  ``pixels`` (H, W, C) uint8 in the model's channels; ``streams`` a list of
  bytes, ``record`` what the decoder needs besides them (a few bytes in
  version 3; a :class:`~cae_compress.io.format.FloatRecord` in version 1;
  nothing in version 2);
* ``decompress(streams, record, height, width, label, progress) -> pixels``;
  a codec whose model has a cheaper synthesis of the same codes (``fast``
  true) also takes ``fast=True`` there (``cae decode --fast``).

A codec names the file version it writes (``version``) and those it reads
(``reads``), the networks it runs (``networks``: ``NAME.<network>.tflite``
on LiteRT, the Keras model's sub-model of that name on TensorFlow), and
whether it has a continuous quality (``variable_rate``, ``-q``/``--bpp``; such
a codec also gives ``analyse(pixels)``, whose result ``compress(...,
analysis=...)`` codes at any quality, so ``--bpp`` analyses once) and
encode efforts above 1 (``max_effort``; ``compress(..., refine=...)`` then
takes the refinement, built on the TensorFlow side by
``cae_compress.models.refine.refiner``).  It is built from its networks
(callables on float32 NHWC arrays, either backend), its description (what
``NAME.lite.json`` holds) and its entropy model's exported tables, so
nothing here depends on the backend or imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cae_compress.errors import CaeError
from cae_compress.io.format import header_name
from cae_compress.io.pixels import from_model_range, to_model_range


class Codec:
    """A loaded model: identity (name, fingerprint, backend, where its weights are) and the protocol."""

    version = 0  # the .cae version this codec writes
    reads: tuple[int, ...] = ()  # the versions it reads
    networks: tuple[str, ...] = ("encoder", "decoder")
    optional_networks: tuple[str, ...] = ()  # networks loaded where the model has them (the hyperprior family's fast_decoder)
    fast = False  # whether decompress(..., fast=True) runs a cheaper synthesis (cae decode --fast)
    entropy_coded = False  # integer codes range-coded under a learned entropy model (a rate curve in cae bench)
    variable_rate = False  # a continuous quality (-q 0-100, --bpp): every rate from one model
    max_effort = 1  # --effort above 1: encode-time refinement (needs the Keras model)
    options: tuple[str, ...] = ()  # the keyword options compress takes beyond the protocol's (the container passes only these)

    def __init__(self, nets: dict, meta: dict, entropy=None, *, name: str, backend: str, keras_path: str | Path | None = None):
        self.nets = nets
        try:
            self.arch = meta["arch"]
            self.fingerprint = bytes.fromhex(meta["fingerprint"])
            self.tile_shape = tuple(int(v) for v in meta["tile_shape"])
            self.code_shape = tuple(int(v) for v in meta["code_shape"])
            self.value_range = tuple(float(v) for v in meta["value_range"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CaeError(f"{name}: unreadable model description ({exc})") from None
        self.code_length = int(np.prod(self.code_shape))
        self.name = header_name(name)
        self.backend = backend
        self.keras_path = Path(keras_path) if keras_path is not None else None
        self.cae = None  # the Keras model, when loaded on TensorFlow (export, inspect, --effort)

    @property
    def qualities(self) -> bool:
        """Deprecated name of :attr:`variable_rate` (``codec.py`` and ``evaluation`` read it still)."""
        return self.variable_rate

    @property
    def channels(self) -> int:
        """Colour channels the model codes (1 or 3)."""
        return self.tile_shape[2]

    def compress(self, pixels: np.ndarray, quality=None, *, progress=None, **options) -> tuple[list[bytes], object]:
        raise NotImplementedError

    def decompress(self, streams: list[bytes], record, height: int, width: int, label: str = "<input>", progress=None) -> np.ndarray:
        raise NotImplementedError

    def progress_steps(self, height: int, width: int) -> int | None:
        """How many times ``compress`` and ``decompress`` call ``progress(1)`` on an image of this size (a bar's total); None if unknown."""
        return None

    @classmethod
    def describe_record(cls, record) -> dict:
        """What a file's record says, for ``cae info`` (no model needed)."""
        return {}

    def check_streams(self, streams: list[bytes], count: int, label: str) -> None:
        if len(streams) != count:
            raise CaeError(f"{label}: a {self.arch} file holds {count} stream{'s' * (count > 1)}, this one {len(streams)}")


class LayoutCodec(Codec):
    """A codec whose two networks a layout drives (``cae_compress.codecs.layouts``): tiles or windows of pixels to codes and back."""

    layout = None  # set by each subclass: layouts.TILES or layouts.WINDOWS

    def progress_steps(self, height: int, width: int) -> int:
        return self.layout.steps(self, height, width)

    def encode_tiles(self, tiles: np.ndarray) -> np.ndarray:
        """Float32 codes, one row per tile (or per window), of uint8 tiles."""
        return np.asarray(self.nets["encoder"](to_model_range(tiles, self.value_range)), np.float32).reshape(len(tiles), -1)

    def decode_tiles(self, codes: np.ndarray) -> np.ndarray:
        """Uint8 tiles of codes: rows of one tile's code, or a grid of code vectors (windows)."""
        x = np.asarray(codes, np.float32)
        if x.ndim != 4:
            x = x.reshape(len(codes), *self.code_shape)
        return from_model_range(self.nets["decoder"](x), self.value_range)
