"""The mean-scale part (Minnen et al. 2018, no context): a float mean and an exact integer scale index per code value.

Runtime: the means from the hyper-codes through the ``hyper_mean`` network
(float, either backend), the scale indices through the scale branch as an
integer network (``entropy_models.gaussian.IntegerScaleNet``), the symbols
coded with the Gaussian conditional of those indices.  Whatever picks a
symbol's table is integer.  Training: the Keras model's ``hyper_mean`` and
``hyper_scale`` (``cae.hyper_synthesis``).  Export: the scale branch's
integer network and the Gaussian tables.
"""

from __future__ import annotations

import numpy as np

from cae_compress.entropy_models.gaussian import GaussianConditional, IntegerScaleNet
from cae_compress.latent.base import LatentPart


class MeanScale(LatentPart):
    """The codes given the hyper-codes, in one pass: ``parameters`` gives the means and the scale indices of their code rows."""

    networks = ("hyper_mean",)

    def __init__(self, mean_net, scale_net: IntegerScaleNet, conditional: GaussianConditional):
        self.mean_net, self.scale_net, self.conditional = mean_net, scale_net, conditional

    @classmethod
    def from_export(cls, nets, entropy, code_length):
        return cls(nets["hyper_mean"], IntegerScaleNet.from_arrays(entropy), GaussianConditional.from_arrays(entropy))

    def parameters(self, z_symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = np.asarray(self.mean_net(z_symbols.astype(np.float32)[None]))[0]
        return mean, self.scale_net(z_symbols)

    def encode(self, enc, y: np.ndarray, params, state=None) -> np.ndarray:
        """Round codes ``y`` (gained) against their means and code them; returns the symbols."""
        mean, index = params
        symbols = self.conditional.quantize(y - mean, index)
        self.conditional.encode(enc, symbols, index)
        return symbols

    def decode(self, dec, params, label: str, state=None) -> tuple[np.ndarray, np.ndarray]:
        """The symbols of one band and the codes they stand for (gained: symbols plus means)."""
        mean, index = params
        symbols = self.conditional.decode(dec, index, label)
        return symbols, symbols.astype(np.float32) + mean

    # ------------------------------------------------------------ training
    @classmethod
    def likelihood(cls, cae, y, z_hat, rounding, noise=None, training=False):
        from keras import ops  # the training side only

        mean, scale = cae.hyper_synthesis(z_hat, ops.shape(y)[1], ops.shape(y)[2], training)
        r = rounding(y - mean)
        residual = r if noise is None else y + noise - mean
        return r + mean, ops.sum(ops.log(GaussianConditional.likelihood(residual, scale)), axis=(1, 2, 3))

    # -------------------------------------------------------------- export
    @classmethod
    def export_arrays(cls, cae) -> dict:
        """The scale branch (``cae.hyper_scale``) as an integer network, and the Gaussian tables."""
        return {**IntegerScaleNet.from_keras(cae.hyper_scale.layers).arrays(), **GaussianConditional.arrays()}
