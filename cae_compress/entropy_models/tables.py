"""Per-channel integer frequency tables and the range coding of integer codes with them (no TensorFlow).

A rate model's export writes, per code channel, the range of integers it
codes and their frequencies, summing to ``2**precision`` (see
``cae_compress.entropy_models.factorized.integer_tables``).  This module range-codes an array
of integer codes with those tables, channel after channel, using
`constriction <https://bamler-lab.github.io/constriction/>`_'s range coder:
a maintained Rust implementation, so nothing here is a hand-written coder.

The tables are integers; the float64 probabilities handed to constriction are
those integers divided by a power of two, which is exact, so encoder and
decoder build the same model from the same file on any machine.  Values
outside a channel's range are clamped to it on encoding (the range leaves out
at most 1e-9 of the learned density on each side).
"""

from __future__ import annotations

import numpy as np

from cae_compress.errors import CaeError

PRECISION = 24  # bits of every integer frequency table: the precision of constriction's default range coder


class Tables:
    """Integer frequency tables of every code channel, ready for the coder."""

    def __init__(self, tables: dict):
        try:
            self.precision = int(tables["precision"])
            self.offsets = np.asarray(tables["offsets"], np.int64)
            freqs = [np.asarray(f, np.int64) for f in tables["frequencies"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise CaeError(f"unreadable entropy tables ({exc})") from None
        if self.precision != PRECISION or len(freqs) != len(self.offsets):
            raise CaeError("unreadable entropy tables (wrong precision or channel count)")
        total = 1 << self.precision
        for f in freqs:
            if f.ndim != 1 or len(f) == 0 or f.min() < 1 or int(f.sum()) != total:
                raise CaeError("unreadable entropy tables (frequencies must be positive and sum to 2**precision)")
        self.sizes = np.array([len(f) for f in freqs], np.int64)
        self._probabilities = [f.astype(np.float64) / total for f in freqs]
        self._models = None

    @property
    def channels(self) -> int:
        return len(self.offsets)

    def models(self):
        if self._models is None:
            import constriction

            Categorical = constriction.stream.model.Categorical
            # a one-symbol channel (unused by the model) is not coded: constriction needs two symbols
            self._models = [Categorical(p, perfect=False) if len(p) > 1 else None for p in self._probabilities]
        return self._models

    def clamp(self, symbols: np.ndarray) -> np.ndarray:
        """Integer codes (n, channels) clamped into each channel's range."""
        return np.clip(symbols, self.offsets, self.offsets + self.sizes - 1)


def encode_symbols(symbols: np.ndarray, tables: Tables) -> bytes:
    """Range-code integer codes of shape (n, channels); returns the compressed bytes."""
    import constriction  # Rust extension: loaded when the first symbols are coded

    symbols = np.asarray(symbols)
    if symbols.ndim != 2 or symbols.shape[1] != tables.channels:
        raise CaeError(f"codes of shape {symbols.shape} do not fit tables of {tables.channels} channels")
    s = (tables.clamp(symbols) - tables.offsets).astype(np.int32)
    enc = constriction.stream.queue.RangeEncoder()
    for c, model in enumerate(tables.models()):
        if tables.sizes[c] > 1:  # a one-symbol channel costs nothing and is not coded
            enc.encode(np.ascontiguousarray(s[:, c]), model)
    return enc.get_compressed().astype("<u4").tobytes()


def decode_symbols(data: bytes, n: int, tables: Tables, label: str = "<input>") -> np.ndarray:
    """The (n, channels) int32 codes of bytes made by :func:`encode_symbols`."""
    import constriction

    if len(data) % 4:
        raise CaeError(f"{label}: corrupt entropy-coded payload (length {len(data)} is not a multiple of 4)")
    dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data, "<u4").astype(np.uint32))
    out = np.empty((n, tables.channels), np.int32)
    try:
        for c, model in enumerate(tables.models()):
            out[:, c] = dec.decode(model, n) if tables.sizes[c] > 1 else 0
    except Exception as exc:  # constriction raises on a stream that cannot be decoded
        raise CaeError(f"{label}: corrupt entropy-coded payload ({exc})") from None
    return out + tables.offsets.astype(np.int32)
