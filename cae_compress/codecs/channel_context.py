"""The ``channel-context`` codec: the hyperprior codec with a channel-conditional latent part, ``.cae`` version 3.

The file is a hyperprior file (the same record, streams, bands and
checksum); what changes is how a band's codes are coded given its
hyper-codes (:class:`ChannelContext`): slice after slice of channels, each
slice's means from the hyperprior's plus a float network of the slices
decoded before (``NAME.mean_context_i.tflite``, run on the backend), each
slice's scale indices from an integer network of the scale branch's
features beside the integer symbols of the slices before
(``entropy_models.gaussian.IntegerScaleNet``, stored in ``NAME.hyper.npz``),
so that every table is decided in integers on every machine.  The model:
``cae_compress.models.channel_context``.
"""

from __future__ import annotations

import numpy as np

from cae_compress.codecs.hyperprior import HyperpriorCodec
from cae_compress.entropy_models.gaussian import GaussianConditional, IntegerScaleNet, fixed_point
from cae_compress.errors import CaeError

SLICES = 4  # slices of the code channels, coded one after the other (the model, cae_compress.models.channel_context, builds this many)


def slice_bounds(channels: int, slices: int = SLICES) -> list[tuple[int, int]]:
    """(first, last + 1) channel of each slice: nearly equal slices of the code channels."""
    cuts = [i * channels // slices for i in range(slices + 1)]
    return list(zip(cuts, cuts[1:]))


class ChannelContext:
    """The codes of a band given its hyper-codes, slice by slice (the hyperprior's ``MeanScale`` with a channel context).

    ``parameters(z_symbols)`` gives the hyperprior's means, the scale
    branch's integer features and slice 0's scale indices; ``encode`` and
    ``decode`` then go through the slices, each one's parameters computed
    from those and from the slices before, on both sides alike.
    """

    def __init__(self, mean_net, scale_net: IntegerScaleNet, conditional: GaussianConditional, mean_contexts: list, scale_contexts: list,
                 bounds: list[tuple[int, int]]):
        self.mean_net, self.scale_net, self.conditional = mean_net, scale_net, conditional
        self.mean_contexts, self.scale_contexts, self.bounds = mean_contexts, scale_contexts, bounds

    def parameters(self, z_symbols: np.ndarray):
        mean = np.asarray(self.mean_net(z_symbols.astype(np.float32)[None]))[0]
        features = self.scale_net.features(z_symbols)
        a, b = self.bounds[0]
        return mean, features, self.scale_net.index(features)[..., a:b]

    def _slice(self, i: int, params, decoded: list, symbols: list) -> tuple[np.ndarray, np.ndarray]:
        """Slice ``i``'s means (float32) and scale indices (integers) given the slices before it."""
        mean, features, index0 = params
        a, b = self.bounds[i]
        if i == 0:
            return mean[..., a:b], index0
        context = np.asarray(self.mean_contexts[i - 1](np.concatenate(decoded, axis=-1)[None]))[0]
        index = self.scale_contexts[i - 1](np.concatenate([features, fixed_point(np.concatenate(symbols, axis=-1))], axis=-1))
        return mean[..., a:b] + context, index

    def encode(self, enc, y: np.ndarray, params) -> np.ndarray:
        decoded, symbols = [], []
        for i, (a, b) in enumerate(self.bounds):
            mean, index = self._slice(i, params, decoded, symbols)
            s = self.conditional.quantize(y[..., a:b] - mean, index)
            self.conditional.encode(enc, s, index)
            decoded.append(s.astype(np.float32) + mean)
            symbols.append(s)
        return np.concatenate(symbols, axis=-1)

    def decode(self, dec, params, label: str) -> tuple[np.ndarray, np.ndarray]:
        decoded, symbols = [], []
        for i in range(len(self.bounds)):
            mean, index = self._slice(i, params, decoded, symbols)
            s = self.conditional.decode(dec, index, label)
            decoded.append(s.astype(np.float32) + mean)
            symbols.append(s)
        return np.concatenate(symbols, axis=-1), np.concatenate(decoded, axis=-1)


class ChannelContextCodec(HyperpriorCodec):
    """The ``channel-context`` architecture: a hyperprior codec composed with the :class:`ChannelContext` latent part."""

    networks = HyperpriorCodec.networks + tuple(f"mean_context_{i}" for i in range(1, SLICES))

    def __init__(self, nets, meta, entropy=None, **identity):
        super().__init__(nets, meta, entropy, **identity)
        try:
            slices = int(entropy["slices"])
            contexts = [IntegerScaleNet.from_arrays(entropy, f"context_{i}") for i in range(1, slices)]
        except (KeyError, ValueError, TypeError) as exc:
            raise CaeError(f"unreadable channel-context parameters ({exc})") from None
        if slices != SLICES:
            raise CaeError(f"a channel-context model of {slices} slices; this cae reads {SLICES}")
        mean = self.latent
        self.latent = ChannelContext(mean.mean_net, mean.scale_net, mean.conditional, [nets[f"mean_context_{i}"] for i in range(1, slices)],
                                     contexts, slice_bounds(self.code_length, slices))
