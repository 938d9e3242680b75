"""A toy latent part for tests/test_toy_architecture.py: the scale-only hyperprior (Ballé et al. 2018).

Zero means, each value's exact integer scale index from the scale branch run
as an integer network, coded with the Gaussian conditional.  It runs no
float network of its own (``networks`` is empty: a model of it exports no
``hyper_mean`` file).  Written against ``cae_compress.latent.base.LatentPart``
only, as an architecture outside the package would be.
"""

from __future__ import annotations

import numpy as np

from cae_compress.entropy_models.gaussian import GaussianConditional, IntegerScaleNet
from cae_compress.latent.base import LatentPart


class ScaleOnly(LatentPart):
    networks = ()

    def __init__(self, scale_net: IntegerScaleNet, conditional: GaussianConditional):
        self.scale_net, self.conditional = scale_net, conditional
        self.bands = 0

    @classmethod
    def from_export(cls, nets, entropy, code_length):
        return cls(IntegerScaleNet.from_arrays(entropy, "toy_scale"), GaussianConditional.from_arrays(entropy))

    def parameters(self, z_symbols):
        return (self.scale_net(z_symbols),)

    def start(self):
        return {"bands": 0}  # state across band edges: counted, and checked by the test

    def encode(self, enc, y, params, state=None):
        (index,) = params
        symbols = self.conditional.quantize(y, index)
        self.conditional.encode(enc, symbols, index)
        state["bands"] += 1
        self.bands = state["bands"]
        return symbols

    def decode(self, dec, params, label, state=None):
        (index,) = params
        symbols = self.conditional.decode(dec, index, label)
        state["bands"] += 1
        self.bands = state["bands"]
        return symbols, symbols.astype(np.float32)

    @classmethod
    def likelihood(cls, cae, y, z_hat, rounding, noise=None, training=False):
        from keras import ops

        log_scale = cae.hyper_scale(z_hat, training=training)[:, : ops.shape(y)[1], : ops.shape(y)[2]]
        r = rounding(y)
        residual = r if noise is None else y + noise
        return r, ops.sum(ops.log(GaussianConditional.likelihood(residual, GaussianConditional.scale_of(log_scale))), axis=(1, 2, 3))

    @classmethod
    def export_arrays(cls, cae):
        return {**IntegerScaleNet.from_keras(cae.hyper_scale.layers).arrays("toy_scale"), **GaussianConditional.arrays()}
