"""The channel-context part (Minnen & Singh 2020): slice after slice of channels, each coded given the slices before.

Each slice's means are the hyperprior's plus a float network of the slices
decoded before (``mean_context_i``, run on the backend); each slice's scale
indices come from an integer network of the scale branch's features beside
the integer symbols of the slices before (``entropy_models.gaussian.IntegerScaleNet``
with ``input_bits``, stored in ``NAME.hyper.npz`` as ``context_i_*``), so that
every table is decided in integers on every machine; slice 0 keeps the
hyperprior's means and scales.  The Keras model holding its networks:
``cae_compress.models.channel_context``.
"""

from __future__ import annotations

import numpy as np

from cae_compress.entropy_models.gaussian import ACTIVATION_BITS, GaussianConditional, IntegerScaleNet, fixed_point
from cae_compress.errors import CaeError
from cae_compress.latent.base import LatentPart
from cae_compress.latent.mean_scale import MeanScale

SLICES = 4  # slices of the code channels, coded one after the other (the model, cae_compress.models.channel_context, builds this many)


def slice_bounds(channels: int, slices: int = SLICES) -> list[tuple[int, int]]:
    """(first, last + 1) channel of each slice: nearly equal slices of the code channels."""
    cuts = [i * channels // slices for i in range(slices + 1)]
    return list(zip(cuts, cuts[1:]))


class ChannelContext(LatentPart):
    """The codes of a band given its hyper-codes, slice by slice (:class:`MeanScale` with a channel context).

    ``parameters(z_symbols)`` gives the hyperprior's means, the scale
    branch's integer features and slice 0's scale indices; ``encode`` and
    ``decode`` then go through the slices, each one's parameters computed
    from those and from the slices before, on both sides alike.
    """

    networks = ("hyper_mean",) + tuple(f"mean_context_{i}" for i in range(1, SLICES))

    def __init__(self, mean_net, scale_net: IntegerScaleNet, conditional: GaussianConditional, mean_contexts: list, scale_contexts: list,
                 bounds: list[tuple[int, int]]):
        self.mean_net, self.scale_net, self.conditional = mean_net, scale_net, conditional
        self.mean_contexts, self.scale_contexts, self.bounds = mean_contexts, scale_contexts, bounds

    @classmethod
    def from_export(cls, nets, entropy, code_length):
        mean = MeanScale.from_export(nets, entropy, code_length)
        try:
            slices = int(entropy["slices"])
            contexts = [IntegerScaleNet.from_arrays(entropy, f"context_{i}") for i in range(1, slices)]
        except (KeyError, ValueError, TypeError) as exc:
            raise CaeError(f"unreadable channel-context parameters ({exc})") from None
        if slices != SLICES:
            raise CaeError(f"a channel-context model of {slices} slices; this cae reads {SLICES}")
        return cls(mean.mean_net, mean.scale_net, mean.conditional, [nets[f"mean_context_{i}"] for i in range(1, slices)], contexts,
                   slice_bounds(code_length, slices))

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

    def encode(self, enc, y: np.ndarray, params, state=None) -> np.ndarray:
        decoded, symbols = [], []
        for i, (a, b) in enumerate(self.bounds):
            mean, index = self._slice(i, params, decoded, symbols)
            s = self.conditional.quantize(y[..., a:b] - mean, index)
            self.conditional.encode(enc, s, index)
            decoded.append(s.astype(np.float32) + mean)
            symbols.append(s)
        return np.concatenate(symbols, axis=-1)

    def decode(self, dec, params, label: str, state=None) -> tuple[np.ndarray, np.ndarray]:
        decoded, symbols = [], []
        for i in range(len(self.bounds)):
            mean, index = self._slice(i, params, decoded, symbols)
            s = self.conditional.decode(dec, index, label)
            decoded.append(s.astype(np.float32) + mean)
            symbols.append(s)
        return np.concatenate(symbols, axis=-1), np.concatenate(decoded, axis=-1)

    # ------------------------------------------------------------ training
    @classmethod
    def likelihood(cls, cae, y, z_hat, rounding, noise=None, training=False):
        """Slice after slice: means and scales from the hyper-codes and the slices before (the model's
        ``mean_contexts``, ``scale_contexts`` and ``scale_features``, the scale branch's features)."""
        from keras import ops  # the training side only

        h, w = ops.shape(y)[1], ops.shape(y)[2]
        hyper_mean, hyper_scale = cae.hyper_synthesis(z_hat, h, w, training)
        features = cae.scale_features(z_hat, training=training)[:, :h, :w]
        decoded, symbols, nats = [], [], 0.0
        for i, (a, b) in enumerate(slice_bounds(int(y.shape[-1]), cae.slices)):
            mean, scale = hyper_mean[..., a:b], hyper_scale[..., a:b]
            if i:
                mean = mean + cae.mean_contexts[i - 1](ops.concatenate(decoded, axis=-1), training=training)
                log_scale = cae.scale_contexts[i - 1](ops.concatenate([features, *symbols], axis=-1), training=training)
                scale = GaussianConditional.scale_of(log_scale)
            r = rounding(y[..., a:b] - mean)
            residual = r if noise is None else y[..., a:b] + noise[..., a:b] - mean
            nats = nats + ops.sum(ops.log(GaussianConditional.likelihood(residual, scale)), axis=(1, 2, 3))
            decoded.append(r + mean)
            symbols.append(r)
        return ops.concatenate(decoded, axis=-1), nats

    # -------------------------------------------------------------- export
    @classmethod
    def export_arrays(cls, cae) -> dict:
        """The mean-scale part's arrays, the slice count and each slice's scale context as an integer network reading fixed-point inputs."""
        params = {**MeanScale.export_arrays(cae), "slices": np.array(cae.slices, np.int32)}
        for i, context in enumerate(cae.scale_contexts, start=1):
            params.update(IntegerScaleNet.from_keras(context.layers, input_bits=ACTIVATION_BITS).arrays(f"context_{i}"))
        return params
